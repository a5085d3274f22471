"""Pydantic schemas shared by services and clients: one contract for every service pair.

- ``feedback``: ``FeedbackEvent`` (gateway -> feedback service)
- ``policy``: ``RankRequest``/``RankResponse`` (gateway -> policy service)
- ``ranker``: ``TopNRequest``/``TopNResponse``, ``AddItemRequest`` (gateway -> ranker)
- ``features``: ``MovieFeatures`` (feature-extractor -> gateway)
- ``movies``, ``recommendations``: the gateway's public API
"""
