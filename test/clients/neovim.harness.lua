-- Headless Neovim 0.7 as a real LSP client of the Modelwright server: attaches to a real source file, waits for
-- the server to report a loaded model, then asks for an inline completion, a hover, a code action and an
-- explanation. Parameters come from MW_* environment variables; results go to MW_OUT as one JSON object a line.
local out = assert(io.open(os.getenv('MW_OUT'), 'w'))
local function emit(record)
  out:write(vim.fn.json_encode(record) .. '\n')
  out:flush()
end

local ok, failure = pcall(function()
  local statuses = {}
  local capabilities = vim.lsp.protocol.make_client_capabilities()
  -- Neovim 0.7 predates LSP 3.18; the harness declares the one method it calls itself.
  capabilities.textDocument.inlineCompletion = { dynamicRegistration = false }
  local client_id = vim.lsp.start_client({
    name = 'modelwright',
    cmd = { os.getenv('MW_NODE'), os.getenv('MW_SERVER'), '--stdio' },
    root_dir = os.getenv('MW_ROOT'),
    capabilities = capabilities,
    init_options = {
      modelsDirectory = os.getenv('MW_MODELS'),
      bundledModelsDirectory = os.getenv('MW_BUNDLED'),
      trusted = true,
    },
    settings = {
      modelwright = {
        completion = { confidenceThreshold = 0, maxTokens = 24 },
        explanation = { hover = true, maxTokens = 24 },
      },
    },
    -- As nvim-lspconfig does: Neovim 0.7 does not announce workspace/configuration, so push the settings.
    on_init = function(client)
      client.notify('workspace/didChangeConfiguration', { settings = client.config.settings })
    end,
    handlers = {
      ['modelwright/status'] = function(_, result)
        table.insert(statuses, result)
      end,
    },
  })
  assert(client_id, 'start_client failed')

  vim.cmd('edit ' .. vim.fn.fnameescape(os.getenv('MW_FILE')))
  local buf = vim.api.nvim_get_current_buf()
  vim.bo[buf].filetype = 'typescript' -- with -u NONE there is no detection; this becomes the languageId
  vim.lsp.buf_attach_client(buf, client_id)
  local client = vim.lsp.get_client_by_id(client_id)
  assert(vim.wait(30000, function() return client.initialized end, 50), 'the server did not initialize')
  local ready = vim.wait(60000, function()
    for _, status in ipairs(statuses) do
      if status.health == 'ready' then return true end
    end
    return false
  end, 50)
  emit({ kind = 'status', ready = ready, statuses = statuses, capabilities = client.server_capabilities })
  assert(ready, 'the server never reported a ready model')

  -- A fresh, indented empty line inside a function body: the cursor where a user would start typing.
  local line = tonumber(os.getenv('MW_LINE'))
  vim.api.nvim_buf_set_lines(buf, line, line, false, { '    ' })
  local uri = vim.uri_from_bufnr(buf)
  local started = vim.loop.hrtime()
  local completion, err = client.request_sync('textDocument/inlineCompletion', {
    textDocument = { uri = uri },
    position = { line = line, character = 4 },
    context = { triggerKind = 1 },
  }, 30000, buf)
  emit({ kind = 'inlineCompletion', response = completion, error = err, ms = (vim.loop.hrtime() - started) / 1e6 })

  local hover_line = tonumber(os.getenv('MW_HOVER_LINE'))
  local hover, hover_err = client.request_sync('textDocument/hover', {
    textDocument = { uri = uri },
    position = { line = hover_line, character = tonumber(os.getenv('MW_HOVER_CHARACTER')) },
  }, 60000, buf)
  emit({ kind = 'hover', response = hover, error = hover_err })

  local actions, actions_err = client.request_sync('textDocument/codeAction', {
    textDocument = { uri = uri },
    range = { start = { line = hover_line, character = 0 }, ['end'] = { line = hover_line + 2, character = 0 } },
    context = { diagnostics = {} },
  }, 10000, buf)
  emit({ kind = 'codeAction', response = actions, error = actions_err })

  local explanation, explain_err = client.request_sync('modelwright/explain', {
    textDocument = { uri = uri },
    range = { start = { line = hover_line, character = 0 }, ['end'] = { line = hover_line + 2, character = 0 } },
  }, 60000, buf)
  emit({ kind = 'explain', response = explanation, error = explain_err })

  client.stop()
  vim.wait(5000, function() return client.is_stopped() end, 50)
end)

if not ok then
  emit({ kind = 'failure', message = tostring(failure) })
  out:close()
  vim.cmd('cquit 1')
else
  out:close()
  vim.cmd('qall!')
end
