// Recognises secrets so that they never reach a training corpus: by file name (checked before a file is
// opened, so such files are never read) and by content (private keys, cloud and SaaS tokens, JWTs,
// hard-coded credential assignments). Each check returns a short stable reason for the model card.

/** Reason recorded for files excluded by name; the file is never opened. */
export const secretFileNameReason = 'secret file name';

/** Exact base names (lower case) that hold credentials. */
const secretBaseNames = new Set([
  '.npmrc',
  '.yarnrc',
  '.yarnrc.yml',
  '.netrc',
  '_netrc',
  '.pypirc',
  '.pgpass',
  '.my.cnf',
  '.git-credentials',
  '.dockercfg',
  '.htpasswd',
  '.s3cfg',
  '.boto',
  '.envrc',
  'kubeconfig',
  'terraform.tfstate',
]);

/** Base-name patterns (tested against the lower-case name) that mark a file as secret. */
const secretNamePatterns: RegExp[] = [
  /^\.env(\..*)?$/, // .env, .env.local, .env.production, .env.example (templates too: they are often filled in)
  /\.env$/, // production.env
  /\.(pem|key|p8|p12|pfx|jks|keystore|ppk|kdbx|asc|gpg|tfvars|tfstate)$/,
  /\.tfstate\.backup$/,
  /^id_(rsa|dsa|ecdsa|ed25519)/, // SSH keys and their .pub siblings
  /^credentials/, // credentials, credentials.json, credentials.yml
  /^secrets?\./, // secrets.json, secret.yaml, secrets.ts
  /^\.secrets?$/,
  /[._-]secrets?\.(json|ya?ml|toml|ini|conf|cfg|txt|properties|xml)$/, // app-secrets.yaml
  /^service[-_]?account.*\.json$/, // Google Cloud service account keys
  /\.kubeconfig$/,
];

/** Returns true when the file's base name marks it as holding secrets, so it must not be opened. */
export function isSecretFileName(baseName: string): boolean {
  const name = baseName.toLowerCase();
  return secretBaseNames.has(name) || secretNamePatterns.some((pattern) => pattern.test(name));
}

/** A content pattern with the name used in the exclusion reason. */
interface SecretPattern {
  name: string;
  pattern: RegExp;
  /** Optional second check on the match, to drop placeholders and low-entropy look-alikes. */
  accept?: (match: RegExpExecArray) => boolean;
}

const placeholderWords =
  /^(x+|\*+|\.+|-+|_+|0+|changeme|change_me|password|passwd|secret|token|example|sample|dummy|redacted|todo|none|null|undefined)$/i;

/** Shannon entropy in bits per character. */
export function shannonEntropy(text: string): number {
  const counts = new Map<string, number>();
  for (const char of text) counts.set(char, (counts.get(char) ?? 0) + 1);
  const length = [...text].length;
  let entropy = 0;
  for (const count of counts.values()) {
    const p = count / length;
    entropy -= p * Math.log2(p);
  }
  return entropy;
}

/** True when a value looks like a real random credential rather than a word, placeholder or reference. */
export function looksLikeRandomSecret(value: string): boolean {
  if (value.length < 16) return false;
  if (placeholderWords.test(value)) return false;
  if (/[${}<>%]/.test(value)) return false; // ${VAR}, {{var}}, <your-key>, %s
  if (/:\/\//.test(value)) return false; // URLs (credentials in URLs have their own pattern)
  if (/^(process\.env|os\.environ|env\.|import\.meta)/i.test(value)) return false;
  const classes =
    Number(/[a-z]/.test(value)) +
    Number(/[A-Z]/.test(value)) +
    Number(/[0-9]/.test(value)) +
    Number(/[^A-Za-z0-9]/.test(value));
  if (classes < 2) return false;
  if (!/[0-9]/.test(value) && /^[A-Za-z]+([_.-][A-Za-z]+)*$/.test(value)) return false; // some_words.joined
  return shannonEntropy(value) >= 3.2;
}

const secretPatterns: SecretPattern[] = [
  { name: 'private key', pattern: /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----/ },
  { name: 'AWS access key id', pattern: /\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[0-9A-Z]{16}\b/ },
  { name: 'GitHub token', pattern: /\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})/ },
  { name: 'GitLab token', pattern: /\bglpat-[A-Za-z0-9_-]{20,}/ },
  { name: 'Slack token', pattern: /\bxox[abposr]-[A-Za-z0-9-]{10,}/ },
  {
    name: 'Slack webhook',
    pattern: /https:\/\/hooks\.slack\.com\/services\/T[A-Za-z0-9]+\/B[A-Za-z0-9]+\/[A-Za-z0-9]+/,
  },
  { name: 'Stripe live key', pattern: /\b(?:sk|rk)_live_[A-Za-z0-9]{16,}/ },
  { name: 'Google API key', pattern: /\bAIza[0-9A-Za-z_-]{35}/ },
  { name: 'npm token', pattern: /\bnpm_[A-Za-z0-9]{36}\b/ },
  { name: 'OpenAI/Anthropic key', pattern: /\bsk-(?:proj-|ant-[a-z0-9]+-)?[A-Za-z0-9_-]{32,}/ },
  { name: 'JWT', pattern: /\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}/ },
  {
    name: 'credentials in URL',
    pattern: /\b[a-z][a-z0-9+.-]*:\/\/[^\s:@/"'`]+:([^\s:@/"'`]{3,})@[^\s"'`]+/i,
    accept: (match) =>
      looksLikeRandomSecret(match[1]) ||
      (match[1].length >= 8 && !placeholderWords.test(match[1]) && !/[${}<>%*]/.test(match[1])),
  },
  {
    // key = "value", key: 'value', "key": "value", KEY=value, key => "value" where key ends with a secret word
    name: 'credential assignment',
    pattern:
      /(?:password|passwd|pwd|secret|secret[_-]?key|api[_-]?key|apikey|access[_-]?key|token|credentials?|private[_-]?key)["']?\s*(?:=>|:=|[:=])\s*(?:["'`]([^"'`\s]{16,200})["'`]|([^\s"'`,;()[\]{}]{16,200})(?=[\s,;]|$))/gim,
    accept: (match) => looksLikeRandomSecret(match[1] ?? match[2]),
  },
];

/**
 * Scans text for credentials. Returns the name of the first pattern found (e.g. "private key",
 * "AWS access key id", "credential assignment"), or undefined when the text looks clean.
 */
export function findSecretInContent(text: string): string | undefined {
  for (const { name, pattern, accept } of secretPatterns) {
    if (!accept) {
      if (pattern.test(text)) return name;
      continue;
    }
    const global = pattern.global ? pattern : new RegExp(pattern.source, pattern.flags + 'g');
    global.lastIndex = 0;
    for (let match = global.exec(text); match; match = global.exec(text)) {
      if (accept(match)) return name;
    }
  }
  return undefined;
}
