//! End-to-end test support: network-namespace lab guards and helpers.
