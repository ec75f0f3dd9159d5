from viscoder_jupyter.core.codeblocks import extract_code, prepare_code, repair_code


def test_takes_the_first_python_block():
    reply = "Sure.\n```python\nplt.plot([1])\n```\nand\n```python\nsecond()\n```"
    assert extract_code(reply) == "plt.plot([1])"


def test_unclosed_block_is_kept_up_to_the_end():
    assert extract_code("```python\nimport x\nx.go(") == "import x\nx.go("


def test_whole_reply_when_it_is_code_and_none_when_it_is_prose():
    assert extract_code("import matplotlib.pyplot as plt\nplt.plot([1, 2])") is not None
    assert extract_code("I cannot help with that request.") is None
    assert extract_code("") is None
    assert extract_code("```python\n\n```") is None


def test_read_csv_of_the_data_is_dropped_or_pointed_at_the_frame():
    code = 'import pandas as pd\ndf = pd.read_csv("data.csv")\ndf.plot()'
    assert "read_csv" not in prepare_code(code, ["df"])
    other = 'import pandas as pd\ndata = pd.read_csv(\n    "data.csv",\n)\ndata.plot()'
    prepared = prepare_code(other, ["sales"])
    assert "read_csv" not in prepared and "data = sales" in prepared


def test_missing_usual_imports_are_added_once():
    prepared = prepare_code("fig, ax = plt.subplots()\nax.bar(df.a, np.log(df.b))", ["df"])
    assert prepared.startswith("import numpy as np\nimport matplotlib.pyplot as plt\n")
    assert prepare_code("import numpy as np\nnp.zeros(1)", ["df"]).count("import numpy") == 1


def test_code_with_a_syntax_error_is_left_for_the_kernel_to_report():
    assert prepare_code("plt.plot(", ["df"]) == "plt.plot("


def test_repairs_are_reported_one_by_one_and_leave_blocks_valid():
    import ast

    from viscoder_jupyter.core.codeblocks import repair_code

    code = (
        "import pandas as pd\ndf = pd.read_csv('data.csv')\ndef draw():\n    plt.plot(df['a'])\n"
        "    plt.savefig('out.png')\nif True:\n    plt.close()\nmatplotlib.use('Agg')\ndraw()"
    )
    repaired, notes = repair_code(code, ["df"])
    ast.parse(repaired)
    assert "read_csv" not in repaired and "savefig" not in repaired and "plt.close" not in repaired
    assert "matplotlib.use" not in repaired and repaired.startswith("import matplotlib.pyplot as plt\n")
    assert [n.split(":")[0] for n in notes] == [
        "dropped reading the data from a file",
        "removed saving to a file (the figure is shown, not saved)",
        "removed closing the figure before it is shown",
        "removed choosing a matplotlib backend (the figure is shown inline)",
        "added `import matplotlib.pyplot as plt`",
    ]
    assert repair_code("plt.plot(", ["df"]) == ("plt.plot(", [])


def test_the_comment_of_a_dropped_line_goes_with_it():
    code = "import pandas as pd\n# Load the sales dataframe\nsales = pd.read_csv('sales.csv')\n# Plot\nsales.plot()\n"
    mended, _ = repair_code(code, ["sales"])
    assert "Load the sales" not in mended and "# Plot" in mended and "sales.plot()" in mended


def test_with_repairs_off_only_the_frame_reads_the_prompt_asks_for_go():
    code = (
        'import pandas as pd\nimport matplotlib.pyplot as plt\ndf = pd.read_csv("data.csv")\n'
        'extra = pd.read_csv("other.csv")\nplt.bar(df.a, np.log(df.b))\nplt.savefig("out.png")'
    )
    mended, notes = repair_code(code, ["df"], only_frame_reads=True)
    assert 'df = pd.read_csv("data.csv")' not in mended and notes == [
        'dropped reading the data from a file: `df = pd.read_csv("data.csv")`'
    ]
    # Everything else stays for the model to meet: the other file, the missing numpy, the savefig.
    assert 'extra = pd.read_csv("other.csv")' in mended and "import numpy" not in mended and "savefig" in mended


def test_a_file_read_becomes_a_copy_of_the_live_frame_not_an_alias():
    import pandas as pd

    code = "import pandas as pd\ndata = pd.read_csv('data.csv')\ndata['total'] = data['a'] * 2\ndata.drop(columns='a', inplace=True)"
    mended, _ = repair_code(code, ["df"])
    df = pd.DataFrame({"a": [1, 2]})
    exec(mended, {"df": df})
    assert list(df.columns) == ["a"] and df["a"].tolist() == [1, 2]  # the user's frame, untouched


def test_no_run_of_blank_lines_is_left_where_the_read_csv_line_was_dropped():
    import re

    code = (
        "import pandas as pd\nimport matplotlib.pyplot as plt\n\n\n# Load the data\n"
        "sales = pd.read_csv('sales.csv')\n\n\n\n# Total per region\n"
        "totals = sales.groupby('region')['revenue'].sum()\n\n"
        "def draw(data):\n    '''Bars.\n\n\n    One per region.'''\n"
        "    frame = pd.read_csv('other.csv')\n    data.plot.bar()\n\ndraw(totals)\nplt.show()\n"
    )
    for only_frame_reads in (False, True):
        mended, _ = repair_code(code, ["sales"], only_frame_reads=only_frame_reads)
        assert "sales = pd.read_csv" not in mended
        outside_strings = mended.replace("'''Bars.\n\n\n    One per region.'''", "")
        assert not re.search(r"\n[ \t]*\n[ \t]*\n", outside_strings), mended  # at most one blank line in a row
        assert "'''Bars.\n\n\n    One per region.'''" in mended  # blank lines inside a string are kept
    assert repair_code("# Load\ndf = pd.read_csv('x.csv')\n\nplt.plot(df.a)", ["df"])[0] == (
        "import matplotlib.pyplot as plt\nplt.plot(df.a)"
    )
