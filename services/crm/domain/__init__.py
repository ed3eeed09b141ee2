"""The connectors' pure core: CRM records in one shape, what they mean to us, and what we write back."""
