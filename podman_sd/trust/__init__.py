"""The trust policy and signature verification (containers-policy.json(5)).

``verify.policy_verifier`` builds the ``Verifier`` that ``fetch.pull.pull``
calls before anything is committed. The modules: ``policy`` (parsing),
``payload`` (simple-signing claims and identities), ``sigstore`` (cosign keys
and signatures), ``gpg`` (GnuPG simple signing), ``lookaside``
(containers-registries.d(5) signature locations), ``source`` (what supplies
signatures), ``verify`` (the engine) and ``cmd`` (``podman-sd trust``).
"""
