-- Test driver: load the documented snippet, open a file, ask for completions, write what Neovim got.
vim.cmd("filetype on")
dofile(vim.env.CODELSTM_SNIPPET)
vim.cmd("edit " .. vim.fn.fnameescape(vim.env.CODELSTM_FILE))
local function ready()
  for _, c in pairs(vim.lsp.buf_get_clients(0)) do
    if c.name == "codelstm" and (c.server_capabilities or c.resolved_capabilities) then
      return true
    end
  end
  return false
end
local attached = vim.wait(30000, ready, 50)
local items = {}
if attached then
  local params = {
    textDocument = vim.lsp.util.make_text_document_params(),
    position = { line = tonumber(vim.env.CODELSTM_LINE), character = tonumber(vim.env.CODELSTM_COL) },
  }
  local responses = vim.lsp.buf_request_sync(0, "textDocument/completion", params, 30000) or {}
  for _, response in pairs(responses) do
    local result = response.result or {}
    for _, item in ipairs(result.items or result) do
      table.insert(items, { label = item.label, newText = item.textEdit and item.textEdit.newText,
                            range = item.textEdit and item.textEdit.range, sortText = item.sortText })
    end
  end
end
vim.fn.writefile({ vim.fn.json_encode({ attached = attached, items = items }) }, vim.env.CODELSTM_OUT)
vim.cmd("qa!")
