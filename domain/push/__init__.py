"""Push notifications: new orders and stock alerts reach a browser (Web Push) or a phone (Expo push)
that has no stream open. See ``docs/push.md``.

- :mod:`domain.push.messages` turns an event into a notification people can read;
- :mod:`domain.push.subscriptions` keeps each user's devices (validated, owner-scoped);
- :mod:`domain.push.webpush` and :mod:`domain.push.expo` speak to the push services;
- :mod:`domain.push.dispatcher` drives them from the durable event log, at least once;
- :mod:`domain.push.service` wires these together for the app.
"""
