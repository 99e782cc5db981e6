//! How the fake provider decides, the same way every time, so the sample orders and the
//! tests know their outcome: an amount whose cents end in 13 (or a zero amount) is declined.

use orders::Order;

/// The provider's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Charge {
    /// Charged.
    Approved {
        /// The payment's id (derived from the order, so a retried charge is the same one).
        payment_id: String,
    },
    /// Declined.
    Declined {
        /// Why.
        reason: String,
    },
}

/// Decides `order`: declined when `amountCents % 100 == 13` or the amount is zero.
pub fn decide(order: &Order) -> Charge {
    if order.amount_cents == 0 {
        Charge::Declined {
            reason: "nothing to charge".into(),
        }
    } else if order.amount_cents % 100 == 13 {
        Charge::Declined {
            reason: "card declined by issuer".into(),
        }
    } else {
        Charge::Approved {
            payment_id: format!("pay-{}", order.order_id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(amount_cents: u64) -> Order {
        Order {
            order_id: "o-1".into(),
            customer_id: "c-1".into(),
            customer_email: "a@example.com".into(),
            items: vec![],
            amount_cents,
            currency: "EUR".into(),
        }
    }

    #[test]
    fn amounts_ending_in_13_cents_are_declined() {
        assert!(matches!(decide(&order(4213)), Charge::Declined { .. }));
        assert!(matches!(decide(&order(0)), Charge::Declined { .. }));
        assert_eq!(
            decide(&order(4999)),
            Charge::Approved {
                payment_id: "pay-o-1".into()
            }
        );
    }
}
