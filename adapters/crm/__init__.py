"""CRM adapters (none | tallanto | amo) behind agent.ports.CRM, the lead outbox and /leadtest."""
