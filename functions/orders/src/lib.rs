//! The order pipeline's shared vocabulary: the events its functions exchange (the
//! contracts), and the few lines of wiring every function repeats (configuration from the
//! environment, the idempotency layer, the bus).
//!
//! The flow, one order at a time, all events correlated by the order's first eventId:
//!
//! ```text
//! OrderPlaced (SNS) ─▶ inventory ─▶ StockReserved ─▶ payments ─▶ PaymentCompleted ─▶ notifications
//!        │                  └──────▶ StockReservationFailed         └─▶ PaymentFailed ─▶ inventory (release)
//!        └─▶ notifications (order confirmation)          every event ─▶ analytics (counters)
//! ```

pub mod contracts;
pub mod entrance;
pub mod personal;
pub mod wiring;

pub use contracts::*;
