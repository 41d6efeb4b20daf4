;;; Test driver (emacs --batch -l): load the documented snippet, open a file, let eglot start
;;; `codelstm lsp', ask for completion at a position as `completion-at-point' does, apply the first
;;; candidate, and write what Emacs got as JSON.
;;
;; Environment: CODELSTM_SNIPPET (docs/editors/emacs.el), CODELSTM_FILE, CODELSTM_LINE and
;; CODELSTM_COL (0-based, ASCII), CODELSTM_OUT (the JSON written), CODELSTM_REQUESTS (how many
;; completion requests, one typed character apart; default 1).  A .dir-locals.el next to the file,
;; if any, applies as in any Emacs session (eglot sends its workspace configuration from there).
(require 'cl-lib)
(require 'json)
(setq make-backup-files nil create-lockfiles nil)
(load (getenv "CODELSTM_SNIPPET") nil t)

(defun codelstm-test--write (data)
  (with-temp-file (getenv "CODELSTM_OUT")
    (insert (json-encode data))))

(defun codelstm-test--count (buffer needle)
  "How many times NEEDLE occurs in BUFFER (0 when there is no such buffer)."
  (if (not (buffer-live-p buffer)) 0
    (with-current-buffer buffer
      (save-excursion
        (goto-char (point-min))
        (let ((n 0))
          (while (search-forward needle nil t) (cl-incf n))
          n)))))

(defun codelstm-test--item (proxy)
  "The LSP CompletionItem behind eglot's candidate PROXY, as an alist."
  (let* ((item (get-text-property 0 'eglot--lsp-item proxy))
         (edit (plist-get item :textEdit))
         (range (plist-get edit :range)))
    `((label . ,(plist-get item :label))
      (newText . ,(plist-get edit :newText))
      (range . ((start . ((line . ,(plist-get (plist-get range :start) :line))
                          (character . ,(plist-get (plist-get range :start) :character))))
                (end . ((line . ,(plist-get (plist-get range :end) :line))
                        (character . ,(plist-get (plist-get range :end) :character))))))
      (sortText . ,(plist-get item :sortText)))))

(find-file (getenv "CODELSTM_FILE"))
;; `eglot-ensure' (from the snippet's python-mode-hook) connects once the current command ends;
;; batch mode has no command loop, so run what it would run.
(run-hooks 'post-command-hook)
(let ((deadline (+ (float-time) 30)))
  (while (and (not (and (eglot-current-server) (bound-and-true-p eglot--managed-mode)))
              (< (float-time) deadline))
    (accept-process-output nil 0.05)))
(let* ((server (eglot-current-server))
       (requests (string-to-number (or (getenv "CODELSTM_REQUESTS") "1")))
       (attached (and server (bound-and-true-p eglot--managed-mode) t))
       (answers '())
       (applied nil))
  (when attached
    (goto-char (point-min))
    (forward-line (string-to-number (getenv "CODELSTM_LINE")))
    (forward-char (string-to-number (getenv "CODELSTM_COL")))
    (dotimes (i requests)
      (when (> i 0) (insert "n"))  ; a keystroke between requests, as when typing
      (let* ((started (float-time))
             (capf (eglot-completion-at-point))
             (start (nth 0 capf))
             (end (nth 1 capf))
             (table (nth 2 capf))
             (exit (plist-get (nthcdr 3 capf) :exit-function))
             (candidates (all-completions (buffer-substring-no-properties start end) table)))
        (push `((seconds . ,(- (float-time) started))
                (items . ,(vconcat (mapcar #'codelstm-test--item candidates))))
              answers)
        ;; Pick the first candidate as a completion UI would: insert it, then let eglot apply its edit.
        (when (and (= i 0) candidates)
          (let ((choice (car candidates)))
            (delete-region start end)
            (goto-char start)
            (insert choice)
            (funcall exit choice 'finished)
            (setq applied (buffer-substring-no-properties (line-beginning-position) (line-end-position))))))))
  ;; Let any notification still on its way arrive before counting.
  (let ((until (+ (float-time) 0.5)))
    (while (< (float-time) until) (accept-process-output nil 0.05)))
  (codelstm-test--write
   `((attached . ,attached)
     (server . ,(and server (process-command (jsonrpc--process server))))
     (answers . ,(vconcat (reverse answers)))
     (applied . ,applied)
     (showMessages . ,(if server (codelstm-test--count (jsonrpc-events-buffer server)
                                                       ":method \"window/showMessage\"")
                        0))
     (messages . ,(with-current-buffer "*Messages*" (buffer-string)))))
  (when server
    (let ((eglot-autoreconnect nil))
      (ignore-errors (eglot-shutdown server)))))
(kill-emacs 0)
