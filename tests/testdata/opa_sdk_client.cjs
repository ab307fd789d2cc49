// Queries a geoscope server the way an OPA client does, with OPA's official
// TypeScript SDK (@styra/opa), and prints what the SDK handed back as one
// JSON object on stdout. Run by tests/opa_sdk_test.go:
//
//   NODE_PATH=<.ci/npm/node_modules> node opa_sdk_client.cjs URL TOKEN CASES.json
//
// CASES.json maps a case name to {"path", "input", "lowLevel"?, "token"?}.
// Each case's outcome is {"result"} (high-level evaluate), {"result",
// "decisionId"} (low-level executePolicyWithInput), or {"error": {name,
// code, message, status, errors}} as the SDK raised it.
"use strict";

const fs = require("node:fs");
const { OPAClient } = require("@styra/opa");
const { OpaApiClient } = require("@styra/opa/sdk/index.js");

async function main() {
  const [url, token, casesFile] = process.argv.slice(2);
  const cases = JSON.parse(fs.readFileSync(casesFile, "utf8"));
  const out = {};
  for (const [name, c] of Object.entries(cases)) {
    const bearer = c.token === undefined ? token : c.token;
    const headers = bearer ? { Authorization: "Bearer " + bearer } : {};
    try {
      if (c.lowLevel) {
        const api = new OpaApiClient({ serverURL: url, bearerAuth: bearer || undefined });
        const resp = await api.executePolicyWithInput({ path: c.path, requestBody: { input: c.input } });
        const body = resp.successfulPolicyResponse;
        out[name] = { result: body.result, decisionId: body.decisionId };
      } else {
        const client = new OPAClient(url, { headers });
        out[name] = { result: await client.evaluate(c.path, c.input) };
      }
    } catch (e) {
      out[name] = {
        error: {
          name: e && e.name,
          code: e && e.code,
          message: e && e.message,
          status: e && e.httpMeta ? e.httpMeta.response.status : (e && e.statusCode),
          errors: e && e.errors,
        },
      };
    }
  }
  process.stdout.write(JSON.stringify(out));
}

main().catch((e) => {
  process.stderr.write(String(e && e.stack ? e.stack : e) + "\n");
  process.exit(1);
});
