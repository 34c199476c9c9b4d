"""A seeded generator of an English-like language that is rich in agreement.

The language follows the two examples that "Understanding LSTMs" uses to motivate the
cell state: the *number* of a subject decides the form of its verb, and the *gender* of
a subject decides the pronoun that refers back to it, possibly many words later.

Rules of the language (all sentences are grammatical by construction):

* Present-tense verbs and ``is/are``, ``was/were``, ``has/have`` agree in number with
  their subject; past-tense verbs (other than ``was/were``) and ``had`` do not inflect.
* A pronoun (``he/she/it/they``, ``him/her/them``, ``himself/herself/themselves``,
  ``his/her/their``) always refers to the subject of the clause it depends on: the
  matrix subject for ``said that she ...`` and reflexives, the previous sentence's
  subject for a sentence-initial pronoun. This is stricter than English, where
  ``The queen near the king said that he ...`` could mean the king; the minimal pairs
  rely on it.
* Nouns are things (``it``), common-gender people and animals (``author``, ``dog``:
  plural pronoun only), gendered nouns (``king/queen``) and first names (singular only).

Held-out split: every tenth noun lemma, gendered pair and first name never appears with
``heldout=False``. With ``heldout=True`` every main-clause subject (the controller that the
minimal pairs test) is a held-out item and all other nouns come from the training lexicon.
A word-level model sees held-out words as unknown tokens, so the split tests
generalisation only with subword tokenisation.

Modules, from words up:

* :mod:`~lstmlm.data.grammar.words`: word lists and feature values;
* :mod:`~lstmlm.data.grammar.lexicon`: inflected nouns and verbs, the held-out split,
  feature lookups by word;
* :mod:`~lstmlm.data.grammar.structures`: sentences kept with their features;
* :mod:`~lstmlm.data.grammar.phrases` and :mod:`~lstmlm.data.grammar.predicates`: noun
  and verb phrases;
* :mod:`~lstmlm.data.grammar.constructions`: the sentence types and their weights;
* :mod:`~lstmlm.data.grammar.sentences`: the default training corpus;
* :mod:`~lstmlm.data.grammar.suites`: the minimal-pair suites and their JSONL files;
* :mod:`~lstmlm.data.grammar.demo_prompts`: the demo's hand-picked prompts.
"""
