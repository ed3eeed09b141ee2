"""One thin client per CRM: the vendor's REST calls and webhook format, normalised into
services/crm/domain/records.py. No decision is taken here."""
