// The Hugging Face hub commands: Download Model… (a recommended model or any repository id, then the precision;
// the server downloads it into the models directory with progress in a cancellable notification, converts it
// when it has safetensors only, and the Models tree lists it, with Deploy offered) and Set Hugging Face Token…
// (kept in SecretStorage; the server gets it at start and on every change; never logged).
import * as vscode from 'vscode';
import { type PullDtype, type PullModel, RECOMMENDED_MODELS, pulledModelName } from '../../../server/src/protocol';
import { commandIds } from '../commandIds';
import { dtypeChoices, parseRepository, repositoryChoices } from '../hubChoices';
import type { ModelsTreeNode } from '../modelsTreeProvider';
import type { CommandContext, CommandHandlers } from './commandContext';
import { requireTrust } from './pickers';

/** LSP's RequestCancelled: the server stopped the download because it was cancelled. */
const REQUEST_CANCELLED = -32800;

interface Download {
  repo: string;
  revision?: string;
  dtype: PullDtype;
}

export function hubCommands(context: CommandContext): CommandHandlers<'downloadModel' | 'setHubToken'> {
  /** Downloads started from this window, by model name, so the same one is not started twice. */
  const downloading = new Set<string>();

  async function downloadModel(): Promise<void> {
    if (!(await requireTrust('Downloading a model'))) return;
    const download = await pickDownload();
    if (!download) return;
    const name = pulledModelName(download.repo, download.revision, download.dtype) ?? download.repo;
    if (downloading.has(name)) {
      void vscode.window.showInformationMessage(`Modelwright is already downloading ${download.repo}.`);
      return;
    }
    downloading.add(name);
    const what = `${download.repo}${download.revision ? `@${download.revision}` : ''} (${download.dtype})`;
    context.log.info(`Downloading ${what}`);
    let result: PullModel.Result;
    try {
      result = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `Downloading ${download.repo}`, cancellable: true },
        (progress, token) => {
          let reported = 0; // percent so far: `increment` is relative
          progress.report({ message: 'starting…' });
          token.onCancellationRequested(() => progress.report({ message: 'cancelling…' }));
          return context.server.pullModel(
            download,
            (p) => {
              const increment =
                p.percentage !== undefined && p.percentage > reported ? p.percentage - reported : undefined;
              if (increment) reported = p.percentage as number;
              progress.report({ message: p.message, increment });
            },
            token,
          );
        },
      );
    } catch (error) {
      const { code, message, data } = error as { code?: number; message?: string; data?: PullModel.ErrorData };
      if (code === REQUEST_CANCELLED) {
        context.log.info(`Download of ${what} cancelled`);
        void vscode.window.showInformationMessage(
          `The download of ${download.repo} was cancelled; downloading it again continues where it stopped.`,
        );
        return;
      }
      if (data?.hubError === 'AccessDenied') {
        context.log.error(`Download of ${what} failed: ${message}`);
        const choice = await vscode.window.showErrorMessage(
          `Modelwright: ${message}`,
          'Set Hugging Face Token…',
          'Show Logs',
        );
        if (choice === 'Set Hugging Face Token…') await vscode.commands.executeCommand(commandIds.setHubToken);
        if (choice === 'Show Logs') context.log.show();
        return;
      }
      throw error;
    } finally {
      downloading.delete(name);
    }
    context.log.info(`Downloaded ${what} as ${result.name} (${result.path})${result.converted ? ', converted' : ''}`);
    await context.tree.refresh();
    if (result.warning) void vscode.window.showWarningMessage(`Modelwright: ${result.warning}`);
    const choice = await vscode.window.showInformationMessage(
      `Downloaded ${result.name}${result.converted ? ' and converted it to ONNX' : ''}.`,
      'Deploy…',
    );
    if (choice !== 'Deploy…') return;
    const model = context.tree.current.find((m) => m.name === result.name);
    const node: ModelsTreeNode | undefined = model && { kind: 'model', model };
    await vscode.commands.executeCommand(commandIds.deploy, node);
  }

  /** The repository (a recommended one, or typed), then the precision; undefined when the user backs out. */
  async function pickDownload(): Promise<Download | undefined> {
    const picked = await vscode.window.showQuickPick(repositoryChoices(RECOMMENDED_MODELS, context.tree.current), {
      title: 'Download Model (1/2)',
      placeHolder: 'A model from the Hugging Face hub (sizes are approximate)',
      matchOnDescription: true,
      matchOnDetail: true,
    });
    if (!picked) return undefined;
    let target: { repo: string; revision?: string };
    if (picked.model) target = { repo: picked.model.repo };
    else {
      const typed = await vscode.window.showInputBox({
        title: 'Download Model (1/2)',
        prompt: 'A Hugging Face model: owner/name, owner/name@revision, or its URL',
        placeHolder: 'Qwen/Qwen2.5-Coder-0.5B',
        ignoreFocusOut: true,
        validateInput: (value) => {
          const parsed = parseRepository(value);
          return 'error' in parsed ? parsed.error : undefined;
        },
      });
      if (typed === undefined) return undefined;
      const parsed = parseRepository(typed);
      if ('error' in parsed) return undefined;
      target = parsed;
    }
    const dtype = await vscode.window.showQuickPick(dtypeChoices(picked.model?.dtype), {
      title: 'Download Model (2/2)',
      placeHolder: `Precision of ${target.repo} (without that ONNX export, its safetensors are converted)`,
      matchOnDetail: true,
    });
    if (!dtype) return undefined;
    return { ...target, dtype: dtype.label };
  }

  async function setHubToken(): Promise<void> {
    const value = await vscode.window.showInputBox({
      title: 'Set Hugging Face Token',
      prompt:
        'An access token (huggingface.co/settings/tokens, "read" is enough) for private and gated models. ' +
        'Kept in the editor’s secret storage. Leave empty to remove the token.',
      placeHolder: context.hubToken.current ? 'a token is set: enter a new one, or nothing to remove it' : 'hf_…',
      password: true,
      ignoreFocusOut: true,
      validateInput: (text) => (/\s/.test(text.trim()) ? 'A token has no spaces' : undefined),
    });
    if (value === undefined) return;
    await context.hubToken.set(value);
    const set = value.trim() !== '';
    context.log.info(set ? 'A Hugging Face token was stored' : 'The Hugging Face token was removed');
    void vscode.window.showInformationMessage(
      set ? 'Modelwright will use this Hugging Face token for downloads.' : 'The Hugging Face token was removed.',
    );
  }

  return { downloadModel, setHubToken };
}
