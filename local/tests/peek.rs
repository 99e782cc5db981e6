//! Reading a queue's messages (`peek`, `LocalPipeline::dead_letters`) leaves them visible:
//! a second read right after sees the same ones. (The chaos run read the dead-letter queues
//! twice in a row, and the second read missed what the first had hidden, so records moved to
//! a DLQ looked lost.)

use eventkit_local::clients::{Clients, Endpoints};
use eventkit_local::peek;
use eventkit_local::resources::create_queue;

#[tokio::test]
async fn two_reads_in_a_row_see_the_same_messages() {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok(),
        "run with the local cloud's env (cargo xtask cloud env)"
    );
    let clients = Clients::new(&Endpoints::from_env()).await;
    let name = format!("peek-{}", uuid::Uuid::new_v4().simple());
    let queue = create_queue(&clients, &name, &serde_json::json!({}), None)
        .await
        .expect("the queue (is the local cloud up?)");
    for body in ["one", "two"] {
        clients
            .sqs
            .send_message()
            .queue_url(&queue.url)
            .message_body(body)
            .send()
            .await
            .expect("sent");
    }
    let first = peek(&clients, &queue).await.expect("read");
    let second = peek(&clients, &queue).await.expect("read again");
    assert_eq!(first.len(), 2);
    assert_eq!(second.len(), 2, "the second read sees them too");
    let _ = clients
        .sqs
        .delete_queue()
        .queue_url(&queue.url)
        .send()
        .await;
}
