"""Scale-out and fault tolerance: many workers, singleton jobs, retention, chaos."""
