//! `airlift build`: from a validated config to the ISO.
