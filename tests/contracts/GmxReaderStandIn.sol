// SPDX-License-Identifier: MIT
// Stand-ins for the GMX v2 pieces the market discovery reads, written for liquidation-forensics tests from
// gmx-synthetics' interfaces (not GMX code): Market.Props (contracts/market/Market.sol); Reader.getMarkets
// (DataStore dataStore, uint256 start, uint256 end) returning the DataStore's market list from start to end,
// where the DataStore clamps end to the list's length and reverts when start is past it; ERC-20 metadata.
pragma solidity ^0.8.20;

struct MarketProps {
    address marketToken;
    address indexToken;
    address longToken;
    address shortToken;
}

contract DataStoreStandIn {
    MarketProps[] internal markets;

    function addMarket(MarketProps calldata m) external {
        markets.push(m);
    }

    function marketsAt(uint256 start, uint256 end) external view returns (MarketProps[] memory out) {
        if (end > markets.length) end = markets.length;
        out = new MarketProps[](end - start); // start > end underflows and reverts, as GMX's valuesAt
        for (uint256 i = start; i < end; i++) out[i - start] = markets[i];
    }
}

contract ReaderStandIn {
    function getMarkets(DataStoreStandIn dataStore, uint256 start, uint256 end) external view returns (MarketProps[] memory) {
        return dataStore.marketsAt(start, end);
    }
}

// ERC-20 metadata kept in immutables (part of the code), so the code can be moved to a real token address.
contract TokenStandIn {
    bytes32 private immutable symbolWord;
    uint8 private immutable symbolLength;
    uint8 public immutable decimals;

    constructor(string memory symbol_, uint8 decimals_) {
        bytes memory b = bytes(symbol_);
        require(b.length <= 32, "symbol too long");
        bytes32 word;
        assembly { word := mload(add(b, 32)) }
        symbolWord = word;
        symbolLength = uint8(b.length);
        decimals = decimals_;
    }

    function symbol() external view returns (string memory out) {
        out = new string(symbolLength);
        bytes32 word = symbolWord;
        assembly { mstore(add(out, 32), word) }
    }
}
