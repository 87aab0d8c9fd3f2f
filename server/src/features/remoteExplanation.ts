// Explanations written by the explanation role's remote endpoint. Grounding and surprisal come first as always; the
// chunks are held back until the endpoint sends its first text, so that an endpoint that is down or times out
// costs nothing visible: the whole explanation is then written again by the local model.
import type { Explain } from '../protocol';
import type { ChatModel } from '../runtime/chatModel';
import type { ExplanationWriter } from '../explanation/explainer';
import type { RemoteClient } from '../serve/remoteClient';
import { type RemoteRoles, RemoteUnavailable } from './remoteRoles';

/**
 * The explanation from `client`, produced by `write` (the explainer with the given writer and chunk sink), or
 * undefined when the endpoint failed before its first text (the caller then explains with the local model).
 */
export async function explainRemotely(
  remote: RemoteRoles,
  client: RemoteClient,
  request: { signal: AbortSignal; onChunk?: (chunk: Explain.Chunk) => void },
  write: (writer: ExplanationWriter, onChunk: (chunk: Explain.Chunk) => void) => Promise<Explain.Result>,
): Promise<Explain.Result | undefined> {
  let held: Explain.Chunk[] | undefined = [];
  const release = () => {
    const chunks = held ?? [];
    held = undefined;
    for (const chunk of chunks) request.onChunk?.(chunk);
  };
  const onChunk = (chunk: Explain.Chunk) => (held ? held.push(chunk) : request.onChunk?.(chunk));
  const chatModel: ChatModel = {
    modelDir: '',
    async chat(messages, options) {
      let text = '';
      const onText = (piece: string) => {
        release();
        text += piece;
        options.onText?.(piece);
      };
      try {
        const answer = await remote.run('explanation', client, request.signal, () =>
          client.chat(messages, { maxTokens: options.maxTokens, signal: options.signal, onText }),
        );
        return answer.text;
      } catch (error) {
        if (!(error instanceof RemoteUnavailable) || held) throw error;
        // It failed part-way: keep what came, and say so.
        options.onText?.(`\n\n*(The remote endpoint stopped answering: ${error.message}.)*`);
        return text;
      }
    },
    async dispose() {},
  };
  try {
    const result = await write({ kind: 'chat', name: remote.label(client), chatModel }, onChunk);
    release();
    return result;
  } catch (error) {
    if (error instanceof RemoteUnavailable && held) return undefined;
    throw error;
  }
}
