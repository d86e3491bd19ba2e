// Package projection turns the cart event log into the read model: it
// subscribes to the filtered $all stream from a stored checkpoint, applies
// each event to its user's document with a version guard (exactly-once
// effect under redelivery), batches the writes while catching up, stores the
// checkpoint only after the documents it covers, and reconnects with capped
// backoff when the subscription or the store fails.
//
// The package declares the ports it needs (Source for events, Store for the
// read model, Parker for events it cannot apply) and knows neither
// EventStoreDB nor MongoDB; adapters in other packages implement the ports.
// The Notifier lets readers wait for a cart to reach a version
// (read-your-writes) without polling the store.
package projection
