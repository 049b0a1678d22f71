//! `#[pg_test]`s: run inside a real cluster with the library preloaded, so
//! the sync worker runs. They talk to sequin-mock at $SEQUIN_MOCK_URL.
