// SPDX-License-Identifier: MIT
// Test double of GMX v2's EventEmitter: same event signatures and EventLogData layout
// (written for liquidation-forensics tests; not GMX code). Anyone may emit; multicall emits several events
// in one transaction (as a GMX handler does: position event, then OrderExecuted), keeping msg.sender.
pragma solidity ^0.8.20;

contract MockEventEmitter {
    struct AddressKV { string key; address value; }
    struct AddressArrayKV { string key; address[] value; }
    struct UintKV { string key; uint256 value; }
    struct UintArrayKV { string key; uint256[] value; }
    struct IntKV { string key; int256 value; }
    struct IntArrayKV { string key; int256[] value; }
    struct BoolKV { string key; bool value; }
    struct BoolArrayKV { string key; bool[] value; }
    struct Bytes32KV { string key; bytes32 value; }
    struct Bytes32ArrayKV { string key; bytes32[] value; }
    struct BytesKV { string key; bytes value; }
    struct BytesArrayKV { string key; bytes[] value; }
    struct StringKV { string key; string value; }
    struct StringArrayKV { string key; string[] value; }

    struct AddressGroup { AddressKV[] items; AddressArrayKV[] arrayItems; }
    struct UintGroup { UintKV[] items; UintArrayKV[] arrayItems; }
    struct IntGroup { IntKV[] items; IntArrayKV[] arrayItems; }
    struct BoolGroup { BoolKV[] items; BoolArrayKV[] arrayItems; }
    struct Bytes32Group { Bytes32KV[] items; Bytes32ArrayKV[] arrayItems; }
    struct BytesGroup { BytesKV[] items; BytesArrayKV[] arrayItems; }
    struct StringGroup { StringKV[] items; StringArrayKV[] arrayItems; }

    struct EventLogData {
        AddressGroup addressItems;
        UintGroup uintItems;
        IntGroup intItems;
        BoolGroup boolItems;
        Bytes32Group bytes32Items;
        BytesGroup bytesItems;
        StringGroup stringItems;
    }

    event EventLog(address msgSender, string eventName, string indexed eventNameHash, EventLogData eventData);
    event EventLog1(address msgSender, string eventName, string indexed eventNameHash, bytes32 indexed topic1, EventLogData eventData);
    event EventLog2(address msgSender, string eventName, string indexed eventNameHash, bytes32 indexed topic1, bytes32 indexed topic2, EventLogData eventData);

    function emitEventLog(string calldata eventName, EventLogData calldata eventData) external {
        emit EventLog(msg.sender, eventName, eventName, eventData);
    }

    function emitEventLog1(string calldata eventName, bytes32 topic1, EventLogData calldata eventData) external {
        emit EventLog1(msg.sender, eventName, eventName, topic1, eventData);
    }

    function emitEventLog2(string calldata eventName, bytes32 topic1, bytes32 topic2, EventLogData calldata eventData) external {
        emit EventLog2(msg.sender, eventName, eventName, topic1, topic2, eventData);
    }

    function multicall(bytes[] calldata calls) external {
        for (uint256 i = 0; i < calls.length; i++) {
            (bool ok, bytes memory reason) = address(this).delegatecall(calls[i]);
            if (!ok) {
                assembly { revert(add(reason, 32), mload(reason)) }
            }
        }
    }
}
