"""CRM connectors (Bitrix24, amoCRM/Kommo): a pure mapping core (domain/), one thin client per
CRM (adapters/), the sync loops (sync.py) and the webhook receiver (app.py). Each CRM runs as
its own process: `python -m services.crm bitrix24|amocrm`."""
