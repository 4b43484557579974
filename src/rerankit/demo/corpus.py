"""The demo corpus: short passages on a few topics, each topic with near-miss distractors
that share its words but do not answer its question."""

from __future__ import annotations

PASSAGES: list[tuple[str, str]] = [
    # reranking
    (
        "rerank-1",
        "A cross-encoder reads the query and a passage together in one transformer pass "
        "and outputs a single relevance score, which makes it more accurate than comparing "
        "separate embeddings.",
    ),
    (
        "rerank-2",
        "Reranking takes the top candidates from a fast first-stage retriever and "
        "reorders them with a slower, more precise model before they reach the language model.",
    ),
    (
        "rerank-3",
        "Cross-country skiing encoders on GPS watches score each lap by pace and heart "
        "rate; the query screen shows the passage of time per kilometre.",
    ),
    (
        "rerank-4",
        "The encoder of a rotary knob reads its position, and the score of the film was "
        "recorded in a single pass by the orchestra.",
    ),
    (
        "rerank-5",
        "Late-interaction models such as ColBERT keep one vector per token and score a "
        "document by summing, for each query token, its best match among the document tokens.",
    ),
    # vector search
    (
        "hnsw-1",
        "HNSW builds a layered graph over the vectors: searches start in the sparse top "
        "layer and greedily descend to denser layers, giving approximate nearest neighbours in "
        "logarithmic time.",
    ),
    (
        "hnsw-2",
        "Qdrant stores vectors with their payloads and answers nearest-neighbour queries "
        "with an HNSW index, filtering on payload fields during the graph search.",
    ),
    (
        "hnsw-3",
        "The graph of the stock index fell sharply in the top layer of the report, and "
        "neighbours of the company sold their shares.",
    ),
    (
        "hnsw-4",
        "A layered cake needs its layers cooled before stacking; the nearest bakery "
        "sells a graph-paper stencil for the top.",
    ),
    # coffee
    (
        "coffee-1",
        "For pour-over coffee, use water just off the boil, around 93 degrees Celsius, "
        "and a medium-fine grind; a ratio of about 1 gram of coffee to 16 grams of water is a "
        "good start.",
    ),
    (
        "coffee-2",
        "Espresso forces hot water through finely ground coffee at about nine bars of "
        "pressure, extracting a concentrated shot in 25 to 30 seconds.",
    ),
    (
        "coffee-3",
        "The coffee table was made from reclaimed water-damaged oak, ground smooth and "
        "finished with a medium-dark stain; the pour of varnish took a day to cure.",
    ),
    (
        "coffee-4",
        "Coffee plants grow best at high altitude in the tropics, where cool nights "
        "slow the ripening of the cherries.",
    ),
    # python GIL
    (
        "gil-1",
        "The global interpreter lock lets only one thread execute Python bytecode at a "
        "time, so CPU-bound Python threads do not run in parallel; processes or native extensions "
        "that release the lock do.",
    ),
    (
        "gil-2",
        "Free-threaded builds of CPython, introduced experimentally in Python 3.13, can "
        "run without the global interpreter lock.",
    ),
    (
        "gil-3",
        "A python lock on a garden gate keeps goats from wandering; the global shipping "
        "of padlocks slowed when threads of the supply chain broke.",
    ),
    (
        "gil-4",
        "Python threads are still useful for I/O-bound work such as network requests, "
        "because a thread waiting on a socket releases the interpreter lock.",
    ),
    # mars
    (
        "mars-1",
        "Perseverance landed in Jezero Crater in February 2021 and collects rock cores in "
        "sealed tubes for a future sample-return mission.",
    ),
    (
        "mars-2",
        "The Mars bar was first made in Slough, England, in 1932, and its caramel layer "
        "is still rolled the same way.",
    ),
    (
        "mars-3",
        "Curiosity has climbed Mount Sharp in Gale Crater since 2012, reading the "
        "layered rocks as a record of ancient lakes.",
    ),
    (
        "mars-4",
        "A rover in rugby is a flanker who roams the field; the crater-sized pitch in the "
        "documentary was filmed in February.",
    ),
    # sourdough
    (
        "bread-1",
        "A sourdough starter is a culture of wild yeast and lactic-acid bacteria kept "
        "alive by regular feeds of flour and water; it leavens the bread and gives its sour taste.",
    ),
    (
        "bread-2",
        "Bake sourdough in a preheated Dutch oven: the trapped steam keeps the crust "
        "soft long enough for the loaf to rise fully before it browns.",
    ),
    (
        "bread-3",
        "The starter motor of the car failed in the cold; the mechanic said the culture "
        "at the garage was to feed customers coffee while they wait.",
    ),
    (
        "bread-4",
        "Sour cherries and rye flour were traded along the Baltic; the bread of the "
        "region is dense and dark.",
    ),
]

QUERIES: list[str] = [
    "How does a cross-encoder score a passage?",
    "How does HNSW find nearest neighbours?",
    "What water temperature for pour-over coffee?",
    "Why don't Python threads run in parallel?",
    "How long can a python snake grow?",
]
