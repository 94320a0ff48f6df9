"""The sandbox: the local venue server (Hyperliquid info API and CEX stand-ins on loopback, with faults) and
the demo that runs the whole pipeline against it on a simulated cascade."""
