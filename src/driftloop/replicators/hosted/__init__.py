"""Hosted (API) models as replicators: one HTTP request per frame, or one conversation per chain.

:mod:`.replicator` holds what every provider shares (the batch sent concurrently, each frame's fate as one
outcome, prices), :mod:`.config` the spec fields every hosted model takes and the canonical spec string,
:mod:`.outcomes` one request's fate and the errors that stop a batch, :mod:`.messages` what it says (secrets
redacted, error bodies read), :mod:`.pacing` the requests-per-minute limit and the retry waits,
:mod:`.canvas` the mapping of a frame onto the canvas sizes an API accepts and back. One module per provider
(:mod:`.openai_images`, :mod:`.gemini`, :mod:`.bfl`) supplies the request and how to read its answer;
:mod:`.thread` is what conversations share (a thread per chain, context modes, cost per turn), with one module
per provider (:mod:`.openai_thread`, :mod:`.gemini_thread`). The models' status, size rules and prices come
from the dated catalogue (:mod:`driftloop.cost.catalogue`). Importing this package imports neither
``openai``, ``google-genai`` nor ``httpx``: a provider imports its client when a replicator is built.
"""
