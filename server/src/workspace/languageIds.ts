// The VS Code language id of a workspace file from its extension, for documents the server opens itself (files a
// user has not opened, evaluation samples), so completion and explanation treat them as the editor would.

const byExtension: Record<string, string> = {
  ts: 'typescript',
  tsx: 'typescriptreact',
  js: 'javascript',
  jsx: 'javascriptreact',
  mjs: 'javascript',
  cjs: 'javascript',
  py: 'python',
  rs: 'rust',
  go: 'go',
  java: 'java',
  c: 'c',
  h: 'c',
  cpp: 'cpp',
  cs: 'csharp',
  rb: 'ruby',
  sh: 'shellscript',
  lua: 'lua',
  md: 'markdown',
  json: 'json',
};

export function languageIdOf(file: string): string {
  return byExtension[file.slice(file.lastIndexOf('.') + 1).toLowerCase()] ?? 'plaintext';
}
