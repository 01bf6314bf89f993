// Parse and validate an AsyncAPI document with @asyncapi/parser (the AsyncAPI Initiative's
// own parser: the specification's JSON Schema, its semantic rules, $ref resolution across
// files). Usage: node validate-asyncapi.mjs FILE. Output, JSON on stdout:
//   {diagnostics: [{severity, code, message, path}], channels: {id: {address,
//    messages: {id: {payloadId, headersId}}}}}
// severity 0 is an error; channels is null when the document did not parse. Exit 0 unless
// the file cannot be read. Used by tests/unit/test_asyncapi.py; installed by scripts/setup.
import { Parser, fromFile } from "@asyncapi/parser";

const file = process.argv[2];
const parser = new Parser();
const { document, diagnostics } = await fromFile(parser, file).parse();
const out = {
  diagnostics: diagnostics.map((d) => ({
    severity: d.severity, code: String(d.code), message: d.message, path: d.path.join("."),
  })),
  channels: null,
};
if (document) {
  out.channels = {};
  for (const channel of document.channels()) {
    const messages = {};
    for (const message of channel.messages()) {
      const payload = message.hasPayload() ? message.payload().json() : null;
      const headers = message.hasHeaders() ? message.headers().json() : null;
      messages[message.id()] = {
        payloadId: payload?.$id ?? null,
        headersId: headers?.$id ?? null,
      };
    }
    out.channels[channel.id()] = { address: channel.address(), messages };
  }
}
process.stdout.write(JSON.stringify(out));
