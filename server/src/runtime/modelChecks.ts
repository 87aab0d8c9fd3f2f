// Checks that the parts of a loaded model folder belong together, shared by every holder that loads and hot-swaps
// models (the editor's registry and the HTTP service): they refuse a folder before it serves anything.
import type { FolderConfig } from '../modelFolder/config';

/**
 * A tokenizer with more tokens than the model's vocabulary produces ids the model cannot embed; a model with many
 * more ids than the tokenizer (beyond alignment padding) was trained with another tokenizer. Throws naming
 * `modelDir` when tokenizer and model do not match.
 */
export function checkTokenizerMatches(
  modelDir: string,
  tokenizerVocabSize: number,
  config: Pick<FolderConfig, 'vocabSize'>,
): void {
  const tokens = tokenizerVocabSize;
  const vocabulary = config.vocabSize;
  const padding = Math.max(128, Math.ceil(vocabulary * 0.01));
  if (tokens > vocabulary || vocabulary - tokens > padding) {
    throw new Error(
      `${modelDir}: the tokenizer has ${tokens} tokens but the model's vocabulary has ${vocabulary}; ` +
        'tokenizer.json does not belong to this model',
    );
  }
}
