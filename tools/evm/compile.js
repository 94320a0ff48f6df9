// Compile tests/contracts/*.sol with solc-js (offline) into tests/contracts/artifacts/<Name>.json
// ({contractName, abi, bytecode, compiler}). Usage: node tools/evm/compile.js   (from the repo root)
const fs = require("fs");
const path = require("path");
const solc = require("solc");

const root = path.resolve(__dirname, "..", "..");
const srcDir = path.join(root, "tests", "contracts");
const outDir = path.join(srcDir, "artifacts");
const sources = {};
for (const f of fs.readdirSync(srcDir).filter((f) => f.endsWith(".sol")).sort()) {
  sources[f] = { content: fs.readFileSync(path.join(srcDir, f), "utf8") };
}
const input = {
  language: "Solidity",
  sources,
  settings: { optimizer: { enabled: true, runs: 200 }, evmVersion: "paris",
              outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } } },
};
const output = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (output.errors || []).filter((e) => e.severity === "error");
if (errors.length) {
  for (const e of errors) console.error(e.formattedMessage);
  process.exit(1);
}
fs.mkdirSync(outDir, { recursive: true });
for (const [file, contracts] of Object.entries(output.contracts)) {
  for (const [name, c] of Object.entries(contracts)) {
    const art = { contractName: name, source: `tests/contracts/${file}`, compiler: `solc-js ${solc.version()}`,
                  abi: c.abi, bytecode: "0x" + c.evm.bytecode.object };
    fs.writeFileSync(path.join(outDir, `${name}.json`), JSON.stringify(art, null, 1) + "\n");
    console.log(`wrote tests/contracts/artifacts/${name}.json`);
  }
}
