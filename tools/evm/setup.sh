#!/usr/bin/env bash
# Install the offline EVM tools for tests (solc-js, anvil from the npm registry) into tools/evm/node_modules.
# Tests that need them skip with a reason when this has not run (or node/npm are missing).
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v npm >/dev/null 2>&1; then
  echo "tools/evm: npm not found; EVM HTTP tests will be skipped" >&2
  exit 0
fi
# --ignore-scripts: anvil's postinstall only checks the platform package, which npm installs itself
npm ci --no-audit --no-fund --ignore-scripts >/dev/null
echo "tools/evm: $(node_modules/.bin/anvil --version 2>/dev/null | head -1)"
