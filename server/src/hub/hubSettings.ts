// Where and how to reach the hub: the endpoint, the token and offline mode, from explicit options first and then
// from the environment variables the Python huggingface_hub client reads (HF_ENDPOINT, HF_TOKEN,
// HUGGING_FACE_HUB_TOKEN, HF_HUB_OFFLINE, HF_HUB_DOWNLOAD_TIMEOUT), so one shell setup serves both.

export const DEFAULT_ENDPOINT = 'https://huggingface.co';
/** Seconds without a response or a byte of data before a request is given up (huggingface_hub's default). */
export const DEFAULT_TIMEOUT_SECONDS = 10;

export interface HubSettingsOptions {
  endpoint?: string;
  /** A token to send; '' sends none, even if the environment has one. */
  token?: string;
  offline?: boolean;
  /** Idle timeout of a request, in milliseconds. */
  timeoutMs?: number;
}

export interface HubSettings {
  /** The endpoint without a trailing slash. */
  endpoint: string;
  token?: string;
  /** Where the token came from, for messages: 'option', 'HF_TOKEN' or 'HUGGING_FACE_HUB_TOKEN'. */
  tokenSource?: string;
  offline: boolean;
  timeoutMs: number;
}

/** huggingface_hub's truthy spellings of a boolean variable. */
export function isTruthy(value: string | undefined): boolean {
  return ['1', 'true', 'yes', 'on'].includes((value ?? '').trim().toLowerCase());
}

function nonEmpty(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  return trimmed ? trimmed : undefined;
}

export function resolveHubSettings(
  options: HubSettingsOptions = {},
  env: NodeJS.ProcessEnv = process.env,
): HubSettings {
  const endpoint = (nonEmpty(options.endpoint) ?? nonEmpty(env.HF_ENDPOINT) ?? DEFAULT_ENDPOINT).replace(/\/+$/, '');
  let token: string | undefined;
  let tokenSource: string | undefined;
  if (options.token !== undefined) {
    token = nonEmpty(options.token);
    tokenSource = token ? 'option' : undefined;
  } else {
    for (const name of ['HF_TOKEN', 'HUGGING_FACE_HUB_TOKEN']) {
      token = nonEmpty(env[name]);
      if (token) {
        tokenSource = name;
        break;
      }
    }
  }
  const seconds = Number(env.HF_HUB_DOWNLOAD_TIMEOUT);
  const timeoutMs = options.timeoutMs ?? (seconds > 0 ? seconds * 1000 : DEFAULT_TIMEOUT_SECONDS * 1000);
  return { endpoint, token, tokenSource, offline: options.offline ?? isTruthy(env.HF_HUB_OFFLINE), timeoutMs };
}
