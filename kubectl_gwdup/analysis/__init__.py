"""Analysis: pure rules over an Inventory. No I/O, no globals."""
