"""Cloud envelopes: AWS SNS, Google Pub/Sub push, Azure Event Grid, CloudEvents webhooks and
Dynamics 365 Business Central. One module per cloud; this one gathers their types.

What they share (see cloud_common): each removes its transport envelope so that rules see the
sender's event as `payload`, splits batches into one event per item, and names the event type and
delivery id from the envelope unless the YAML `event:` / `delivery_id:` expressions say otherwise.
"""
from bridge.sources import cloud_aws, cloud_azure, cloud_events, cloud_google

TYPES: list = [*cloud_aws.TYPES, *cloud_google.TYPES, *cloud_azure.TYPES, *cloud_events.TYPES]
