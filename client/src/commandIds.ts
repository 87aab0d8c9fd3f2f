// The ids of every command the extension contributes, in one table: commands/index.ts registers a handler for
// each (the type makes a missing one an error) and a unit test checks the manifest lists exactly these.
export const commandIds = {
  train: 'modelwright.trainModel',
  evaluate: 'modelwright.evaluateModel',
  deploy: 'modelwright.deployModel',
  rollback: 'modelwright.rollbackDeployment',
  explainSelection: 'modelwright.explainSelection',
  /** The server's "Explain with Modelwright" code action runs this with [uri, range] (protocol ExplainCommand). */
  explain: 'modelwright.explain',
  selectModel: 'modelwright.selectModel',
  showLogs: 'modelwright.showLogs',
  deleteModel: 'modelwright.deleteModel',
  revealModelCard: 'modelwright.revealModelCard',
  refreshModels: 'modelwright.refreshModels',
  stopTraining: 'modelwright.stopTraining',
  restartServer: 'modelwright.restartServer',
  showTraining: 'modelwright.showTraining',
  stopService: 'modelwright.stopService',
  downloadModel: 'modelwright.downloadModel',
  setHubToken: 'modelwright.setHubToken',
  setRemoteEndpointKey: 'modelwright.setRemoteEndpointKey',
  showMenu: 'modelwright.showMenu',
  toggleCompletions: 'modelwright.toggleCompletions',
  tryCompletions: 'modelwright.tryCompletions',
  openWalkthrough: 'modelwright.openWalkthrough',
} as const;

export type CommandName = keyof typeof commandIds;
