//! Typed domain events from SQS, SNS and EventBridge, and the event envelope.
