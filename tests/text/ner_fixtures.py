"""Hand-written descriptions with the brands and places a person would mark in them.

The gold sets keep what spaCy misses (rivers, neighbourhoods, brands it has never seen).
ECOMMERCE and TRAVEL were written first and then used while shaping the NER label mapping and
the brand-span rule, so scores on them are optimistic. *_HELD_OUT were written after those rules
were fixed and were not used to change them: they are the honest estimate.
"""

from __future__ import annotations

#: (text, brands a shopper would search by)
ECOMMERCE = (
    ("Sony WH-1000XM5 wireless noise cancelling headphones in black, with a carrying case.",
     {"Sony"}),
    ("The new Samsung Galaxy S24 smartphone has a 6.2-inch display and a titanium frame.",
     {"Samsung"}),
    ("Nike Pegasus 40 running shoes with a breathable mesh upper.", {"Nike"}),
    ("KitchenAid Artisan stand mixer with a 5-quart stainless steel bowl.", {"KitchenAid"}),
    ("Apple AirPods Pro with MagSafe charging case, sold by Apple Inc.", {"Apple"}),
    ("Patagonia Better Sweater fleece jacket made from recycled polyester.", {"Patagonia"}),
    ("Dyson V15 cordless vacuum cleaner with a laser dust sensor.", {"Dyson"}),
    ("A Canon EOS R50 mirrorless camera bundled with a SanDisk 64GB memory card.",
     {"Canon", "SanDisk"}),
    ("IKEA Poäng armchair with a birch veneer frame and a cotton cushion.", {"IKEA"}),
    ("Levi's 501 original jeans in stonewash denim, made by Levi Strauss & Co.",
     {"Levi's", "Levi Strauss & Co."}),
)

#: (text, places — cities and landmarks — a traveller would search by)
TRAVEL = (
    ("Stay near the Eiffel Tower in Paris and take a boat tour on the Seine.",
     {"Eiffel Tower", "Paris", "Seine"}),
    ("Explore the Colosseum in Rome, then eat gelato in Trastevere.",
     {"Colosseum", "Rome", "Trastevere"}),
    ("Hike to Machu Picchu from Cusco and try ceviche in Lima.", {"Machu Picchu", "Cusco", "Lima"}),
    ("Visit the Louvre and Notre-Dame in Paris before a day trip to Versailles.",
     {"Louvre", "Notre-Dame", "Paris", "Versailles"}),
    ("Ride the cable car up Table Mountain in Cape Town at sunset.",
     {"Table Mountain", "Cape Town"}),
    ("A weekend in Barcelona: the Sagrada Familia, Park Güell and tapas on La Rambla.",
     {"Barcelona", "Sagrada Familia", "Park Güell", "La Rambla"}),
    ("Walk across the Brooklyn Bridge and through Central Park in New York.",
     {"Brooklyn Bridge", "Central Park", "New York"}),
    ("Take the train from Tokyo to Kyoto to see the Fushimi Inari shrine.",
     {"Tokyo", "Kyoto", "Fushimi Inari"}),
)


ECOMMERCE_HELD_OUT = (
    ("Bose QuietComfort Ultra earbuds with a wireless charging case.", {"Bose"}),
    ("Logitech MX Master 3S wireless mouse for Mac and Windows.", {"Logitech"}),
    ("Adidas Ultraboost 22 running shoes in core black.", {"Adidas"}),
    ("Le Creuset enameled cast iron Dutch oven, 5.5 quart, cherry red.", {"Le Creuset"}),
    ("A Philips Hue starter kit with three smart bulbs and a bridge.", {"Philips"}),
    ("The North Face Nuptse down jacket with a water-repellent shell.", {"The North Face"}),
    ("Instant Pot Duo 7-in-1 electric pressure cooker by Instant Brands.",
     {"Instant Pot", "Instant Brands"}),
)

TRAVEL_HELD_OUT = (
    ("Climb the Acropolis in Athens and watch the sunset from Lycabettus Hill.",
     {"Acropolis", "Athens", "Lycabettus Hill"}),
    ("Cruise along the Bosphorus in Istanbul after visiting the Hagia Sophia.",
     {"Bosphorus", "Istanbul", "Hagia Sophia"}),
    ("Cycle around Amsterdam's canals and visit the Rijksmuseum.", {"Amsterdam", "Rijksmuseum"}),
    ("A food tour of Bangkok ending at the Grand Palace and Wat Pho.",
     {"Bangkok", "Grand Palace", "Wat Pho"}),
    ("Drive the Great Ocean Road from Melbourne to the Twelve Apostles.",
     {"Great Ocean Road", "Melbourne", "Twelve Apostles"}),
    ("See the Northern Lights in Tromsø and sleep in an ice hotel.", {"Tromsø"}),
)
