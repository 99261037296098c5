"""Writes datasets/src/test/resources/data/code_io.parquet with pandas + pyarrow, the way Hugging Face datasets
publishes Parquet (a string column, an int column, a nested list of structs). The Java tests read this file to
prove grpo4j reads Parquet written by another tool. Run: ../shared/tools/py-venv .venv-pq pyarrow pandas, then
.venv-pq/bin/python scripts/make-parquet-fixture.py"""
import pandas as pd

rows = [
    {"question": "Read two integers and print their sum.", "difficulty": 1,
     "tests": [{"input": "1 2\n", "output": "3\n"}, {"input": "5 7\n", "output": "12\n"}],
     "tags": ["math", "io"], "score": 0.5},
    {"question": "Print the string reversed.", "difficulty": 2,
     "tests": [{"input": "abc\n", "output": "cba\n"}],
     "tags": ["strings"], "score": None},
    {"question": "Print the maximum of a list of integers.", "difficulty": 2,
     "tests": [{"input": "3\n1 9 4\n", "output": "9\n"}],
     "tags": [], "score": 1.25},
]
pd.DataFrame(rows).to_parquet("datasets/src/test/resources/data/code_io.parquet", engine="pyarrow", index=False)
