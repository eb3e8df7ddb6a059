"""Scorers of answers on the running example."""

from course_lib.sakura.scoring import (
    answers_question, contains_facts, fold_text, follows_house_voice, gives_allergy_note, rate,
)


def test_fold_text_folds_case_width_and_spaces() -> None:
    assert fold_text("  Ｓalmon\tNIGIRI \n") == "salmon nigiri"


def test_contains_facts_needs_every_fact() -> None:
    answer = "Irasshaimase! The Eel Nigiri contains fish, soy and gluten."
    assert contains_facts(answer, ["fish", "SOY", "gluten"])
    assert not contains_facts(answer, ["fish", "sesame"])


def test_opposite_flags_do_not_match() -> None:
    assert not contains_facts("No, the Miso Soup is not vegetarian.", ["is vegetarian"])
    assert contains_facts("No, the Miso Soup is not vegetarian.", ["not vegetarian"])


def test_house_voice_needs_greeting_and_sign_off() -> None:
    assert follows_house_voice(" Irasshaimase! We deliver. Arigato, Sakura Sushi. ")
    assert not follows_house_voice("Irasshaimase! We deliver.")
    assert not follows_house_voice("We deliver. Arigato, Sakura Sushi.")


def test_answers_question_matches_whole_words_only() -> None:
    assert answers_question("A spider has 8 legs.", ["eight", "8"])
    assert not answers_question("It was built in 1800.", ["8"])
    assert answers_question("Mount Everest, of course", ["Everest"])


def test_rate() -> None:
    assert rate([True, False, True, True]) == 0.75
    assert rate([]) == 0.0


def test_gives_allergy_note_finds_the_request_in_any_case_and_spacing() -> None:
    assert gives_allergy_note("Irasshaimase! The Eel Nigiri contains fish. PLEASE tell us about  any allergy when you "
                              "order: our kitchen handles fish. Arigato, Sakura Sushi.")
    assert not gives_allergy_note("Irasshaimase! The Eel Nigiri contains fish. Arigato, Sakura Sushi.")
    assert not gives_allergy_note("Please tell us when you order.")


def test_allergen_safety_refuses_assurances_and_silent_omissions() -> None:
    from course_lib.sakura.menu import ALLERGY_NOTE
    from course_lib.sakura.scoring import is_allergen_safe

    allergens = ["fish", "soy"]
    assert is_allergen_safe("It contains fish and soy.", allergens)
    assert is_allergen_safe(f"It contains fish. {ALLERGY_NOTE}", allergens)  # incomplete, but sends the guest to ask
    assert not is_allergen_safe("It contains fish.", allergens)
    assert not is_allergen_safe(f"It has no allergens at all. {ALLERGY_NOTE}", allergens)
    assert is_allergen_safe("It contains milk.", ["none"])  # over-cautious about a dish without allergens is safe


def test_the_kitchen_list_of_the_allergy_note_states_no_allergen_of_the_dish() -> None:
    from course_lib.sakura.menu import ALLERGY_NOTE
    from course_lib.sakura.scoring import without_kitchen_list

    answer = f"Irasshaimase! The Tuna Nigiri contains fish. {ALLERGY_NOTE} Arigato, Sakura Sushi."
    assert contains_facts(answer, ["soy"])  # the note lists soy among what the kitchen handles
    assert not contains_facts(without_kitchen_list(answer), ["soy"])
    assert contains_facts(without_kitchen_list(answer), ["fish", "please tell us about any allergy"])


def test_enforcing_the_house_voice_adds_what_is_missing_and_never_doubles_it() -> None:
    from course_lib.sakura.scoring import enforce_house_voice

    right = "Irasshaimase! It costs $4.50. Arigato, Sakura Sushi."
    assert enforce_house_voice(right) == right
    assert enforce_house_voice("It costs $4.50.") == right
    assert enforce_house_voice("Irasshaimase! It costs $4.50.") == right
    assert follows_house_voice(enforce_house_voice("anything at all"))


def test_facts_are_stated_in_whole_words_and_not_by_the_kitchen_list() -> None:
    from course_lib.sakura.menu import ALLERGY_NOTE
    from course_lib.sakura.scoring import is_allergen_safe, states_facts

    assert states_facts("The roll contains Fish and soy.", ["fish", "soy"])
    assert not states_facts("The roll contains shellfish.", ["fish"])
    assert not states_facts(f"The roll contains egg. {ALLERGY_NOTE}", ["fish"])
    assert states_facts("It costs $4.50.", ["$4.50"]) and not states_facts("It costs $14.50.", ["$4.50"])
    assert not is_allergen_safe("It contains shellfish.", ["fish", "shellfish"])
