"""Process supervision: spawn, stream, signal, reap; backoff, policy and state."""
