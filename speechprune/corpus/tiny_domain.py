"""An AN4-like small-vocabulary domain: spelled letters, digits, numbers, dates and commands.

AN4 (CMU census data) has people spell names ("p i t t s b u r g h"), read digit strings and
numbers, say dates ("march twenty third nineteen ninety") and short commands ("stop", "erase").
The generator combines the same pieces so that a small model can learn the domain quickly.
"""

from __future__ import annotations

import random
from typing import Callable

from num2words import num2words

from speechprune.corpus.prompts import Prompt

# How the engines should say each spelled letter: a lone "a" would be read as the article.
LETTER_NAMES = {
    "a": "ay", "b": "bee", "c": "see", "d": "dee", "e": "ee", "f": "eff", "g": "jee",
    "h": "aitch", "i": "eye", "j": "jay", "k": "kay", "l": "el", "m": "em", "n": "en",
    "o": "oh", "p": "pee", "q": "cue", "r": "are", "s": "ess", "t": "tee", "u": "you",
    "v": "vee", "w": "double you", "x": "ex", "y": "why", "z": "zee",
}

# Words people spell: places and names as in AN4, plus a few everyday words.
SPELLED_WORDS = (
    "pittsburgh", "carnegie", "mellon", "boston", "chicago", "denver", "dallas", "seattle",
    "atlanta", "houston", "erie", "ohio", "texas", "maine", "iowa", "utah", "robert", "mary",
    "john", "linda", "james", "susan", "david", "karen", "smith", "jones", "miller", "brown",
    "wilson", "taylor", "clark", "lewis", "walker", "young", "allen", "king", "wright", "scott",
    "green", "baker", "adams", "nelson", "hill", "campbell", "mitchell", "roberts", "carter",
    "phillips", "evans", "turner", "torres", "parker", "collins", "edwards", "stewart", "morris",
    "murphy", "cook", "rogers", "morgan", "peterson", "cooper", "reed", "bailey", "bell",
    "kelly", "howard", "ward", "cox", "diaz", "wood", "gray", "james", "watson", "brooks",
    "fox", "quincy", "zack", "vicky", "judy", "hazel", "rex", "max", "jay", "quinn", "yves",
)
COMMANDS = ("stop", "go", "repeat", "erase", "enter", "help", "yes", "no", "start", "cancel",
            "next", "back")
MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august",
          "september", "october", "november", "december")
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

# Longest digit strings and spelled chunks, and the number and year ranges (AN4-like lengths).
MIN_DIGITS, MAX_DIGITS = 3, 7
MAX_NUMBER = 9999
FIRST_YEAR, LAST_YEAR = 1940, 2029


def _words(number_text: str) -> str:
    """num2words output as plain words: no "and", hyphens or commas (AN4 style)."""
    text = number_text.replace("-", " ").replace(",", " ")
    return " ".join(word for word in text.split() if word != "and")


def number_words(number: int) -> str:
    return _words(num2words(number))


def ordinal_words(number: int) -> str:
    return _words(num2words(number, to="ordinal"))


def year_words(year: int) -> str:
    return _words(num2words(year, to="year"))


def spelled(word: str) -> Prompt:
    """"pittsburgh" -> text "p i t t s b u r g h", spoken as letter names with pauses."""
    return Prompt(" ".join(word), ", ".join(LETTER_NAMES[letter] for letter in word))


def plain(text: str) -> Prompt:
    return Prompt(text, text)


def join(*parts: Prompt) -> Prompt:
    return Prompt(" ".join(part.text for part in parts), ", ".join(part.spoken for part in parts))


def _spelled_word(rng: random.Random) -> Prompt:
    return spelled(rng.choice(SPELLED_WORDS))


def _spelled_then_command(rng: random.Random) -> Prompt:
    return join(_spelled_word(rng), plain(rng.choice(("enter", "stop", "erase", "repeat"))))


def _name_is(rng: random.Random) -> Prompt:
    lead = rng.choice(("my name is", "my first name is", "my last name is", "the city is"))
    return join(plain(lead), _spelled_word(rng))


def _digit_string(rng: random.Random) -> Prompt:
    count = rng.randint(MIN_DIGITS, MAX_DIGITS)
    return plain(" ".join(rng.choice(DIGITS) for _ in range(count)))


def _number(rng: random.Random) -> Prompt:
    # Mostly small numbers, as people say them most.
    upper = rng.choice((20, 100, 1000, MAX_NUMBER))
    return plain(number_words(rng.randint(0, upper)))


def _command_number(rng: random.Random) -> Prompt:
    return join(plain(rng.choice(("enter", "erase", "repeat", "go to"))), _number(rng))


def _date(rng: random.Random) -> Prompt:
    month = rng.choice(MONTHS)
    day = ordinal_words(rng.randint(1, 31))
    if rng.random() < 0.3:  # some dates have no year
        return plain(f"{month} {day}")
    return plain(f"{month} {day} {year_words(rng.randint(FIRST_YEAR, LAST_YEAR))}")


def _command(rng: random.Random) -> Prompt:
    return plain(" ".join(rng.sample(COMMANDS, rng.randint(1, 2))))


# Utterance kinds and how often each is drawn.
KINDS: tuple[tuple[Callable[[random.Random], Prompt], float], ...] = (
    (_spelled_word, 0.25),
    (_spelled_then_command, 0.08),
    (_name_is, 0.07),
    (_digit_string, 0.18),
    (_number, 0.12),
    (_command_number, 0.1),
    (_date, 0.15),
    (_command, 0.05),
)


def tiny_prompts(count: int, rng: random.Random) -> list[Prompt]:
    """`count` prompts with distinct transcripts, in a fixed order for a given `rng` state."""
    kinds = [kind for kind, _ in KINDS]
    weights = [weight for _, weight in KINDS]
    prompts: dict[str, Prompt] = {}
    attempts = 0
    while len(prompts) < count:
        attempts += 1
        if attempts > 50 * count + 1000:
            raise ValueError(f"the tiny domain cannot produce {count} distinct utterances")
        prompt = rng.choices(kinds, weights)[0](rng)
        prompts.setdefault(prompt.text, prompt)
    return list(prompts.values())
