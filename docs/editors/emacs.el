;;; codelstm in Emacs with eglot (built in from Emacs 29; on Emacs 28, Debian's elpa-eglot package).
;; Put this in your init.el.  Eglot runs one language server per major mode and project, so in the
;; modes listed here codelstm takes the place of the server eglot would otherwise start.  Completion
;; comes through `completion-at-point' (C-M-i) or any completion-at-point UI (corfu, company).
(require 'eglot)
(add-to-list 'eglot-server-programs
             `((python-mode python-ts-mode js-mode java-mode c-mode c++-mode go-mode rust-mode)
               . ("codelstm" "lsp"
                  :initializationOptions
                  (:serverUrl ,(or (getenv "CODELSTM_SERVER_URL") "http://127.0.0.1:8000")
                   :timeoutMs 500
                   :maxChars 64))))
(add-hook 'python-mode-hook #'eglot-ensure)
