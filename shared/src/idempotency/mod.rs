//! Once-per-key side effects, backed by DynamoDB or memory.
