-- codelstm in Neovim (0.7 or newer), with the built-in LSP client.
-- Put this in your init.lua. It starts `codelstm lsp` once and attaches it to the buffers of the
-- languages listed below; completion comes through `omnifunc` (<C-x><C-o>) or any completion plugin.
local codelstm_client_id = nil
vim.api.nvim_create_autocmd("FileType", {
  pattern = { "python", "javascript", "typescript", "go", "rust", "java", "c", "cpp", "lua" },
  callback = function(args)
    if codelstm_client_id == nil then
      codelstm_client_id = vim.lsp.start_client({
        name = "codelstm",
        cmd = { "codelstm", "lsp" },
        root_dir = vim.fn.getcwd(),
        init_options = {
          serverUrl = os.getenv("CODELSTM_SERVER_URL") or "http://127.0.0.1:8000",
          timeoutMs = 500,
          maxChars = 64,
        },
      })
    end
    vim.lsp.buf_attach_client(args.buf, codelstm_client_id)
    vim.bo[args.buf].omnifunc = "v:lua.vim.lsp.omnifunc"
  end,
})
