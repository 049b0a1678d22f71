//! sequin-mock: a stateful in-memory imitation of the SaaS APIs sequin_fdw talks
//! to (subsets of Stripe, Salesforce and GitHub), plus an admin interface under `/_admin` to
//! seed data, change it "from outside", inject faults and read request counts.

pub mod admin;
pub mod faults;
pub mod github;
pub mod http;
pub mod ids;
pub mod oauth;
pub mod reqlog;
pub mod salesforce;
pub mod server;
pub mod state;
pub mod stripe;
pub mod target_limit;

pub use server::{bind, serve};
pub use state::App;
