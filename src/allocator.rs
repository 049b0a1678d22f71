//! What Rust allocates (records, JSON, requests) comes from mimalloc;
//! Postgres's own memory (palloc, and its malloc) is untouched. With
//! glibc's malloc, the sync's reader thread spent two fifths of its time
//! allocating and freeing a page's records, under its arena's lock when
//! another thread freed them, and a long-lived worker's heap fragmented:
//! the backfill went at 69,000–99,000 rows/s, with mimalloc 106,000–115,000.
//! mimalloc finds each thread's heap through a pthread key, not an
//! initial-exec thread-local (`.cargo/config.toml`): the library then needs
//! no static TLS, which a library loaded with `dlopen` may not get
//! (`scripts/check_library.sh` checks that it needs none).

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
