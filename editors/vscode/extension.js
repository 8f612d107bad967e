// Minimal VS Code client for `ksm lsp` (the language server of ksm-toolkit).
// Highlighting comes from the TextMate grammars in syntaxes/; everything else is
// the server's: this file only starts `ksm lsp` over stdio for the policy files.
"use strict";

const vscode = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");

const LANGUAGES = ["psl", "kos-idl", "cdl", "edl", "ksm-props"];

let client;

function activate(context) {
  const config = vscode.workspace.getConfiguration("ksm");
  const command = config.get("server.path", "ksm");
  const args = ["lsp", ...config.get("server.extraArgs", [])];
  const serverOptions = {
    run: { command, args, transport: TransportKind.stdio },
    debug: { command, args, transport: TransportKind.stdio },
  };
  const clientOptions = {
    documentSelector: LANGUAGES.map((language) => ({ scheme: "file", language })),
    outputChannelName: "ksm lsp",
  };
  client = new LanguageClient("ksm", "ksm lsp", serverOptions, clientOptions);
  context.subscriptions.push(
    vscode.commands.registerCommand("ksm.restartServer", () => client.restart())
  );
  return client.start().catch((err) => {
    vscode.window.showErrorMessage(
      `Could not start \`${command} lsp\`: ${err.message}. Set ksm.server.path to the ksm executable.`
    );
  });
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
