"""Redaction as a table of real command lines: what must be hidden, and what must survive.

Why a table: every rule is a guess about what people type, and a guess that hides too much
makes the log useless (a port, a path, the rest of a script), one that hides too little leaks a
password into a public CI artifact. Each row is a command line someone really runs; the
secret in it is always `hunter2` (or contains it) so the leak check is one search.
"""

from __future__ import annotations

import shlex

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from memtrail import sampler as S

SECRET = "hunter2"

# (command line as a shell would split it, the redacted command line)
REDACTED = [
    # database clients: -pX and -p X (mysql takes the separate form as a database name and
    # prompts; people still type it, and a hidden database name costs little)
    ("mysql -u root -phunter2 shop", "mysql -u root -p*** shop"),
    ("mysql -u root -p hunter2 shop", "mysql -u root -p *** shop"),
    ("mysqldump --user=root --password=hunter2 shop", "mysqldump --user=root --password=*** shop"),
    ("/usr/bin/mariadb -phunter2 -h db", "/usr/bin/mariadb -p*** -h db"),
    ("sudo -u app mysql -phunter2", "sudo -u app mysql -p***"),
    ("mongosh -u admin -p hunter2 --authenticationDatabase admin",
     "mongosh -u admin -p *** --authenticationDatabase admin"),
    ("env PGPASSWORD=hunter2 psql -h db", "env PGPASSWORD=*** psql -h db"),
    ("psql 'host=db user=app password=hunter2 dbname=shop'",
     "psql 'host=db user=app password=*** dbname=shop'"),
    ("psql postgresql://app:hunter2@db:5432/shop", "psql postgresql://app:***@db:5432/shop"),
    ("redis-cli -h cache -p 6379 -a hunter2 ping", "redis-cli -h cache -p 6379 -a *** ping"),
    ("sqlcmd -S db -U sa -P hunter2", "sqlcmd -S db -U sa -P ***"),
    ("ldapsearch -x -D cn=admin -w hunter2 -b dc=x", "ldapsearch -x -D cn=admin -w *** -b dc=x"),
    # HTTP clients
    ("curl -u bob:hunter2 https://api.example.com/", "curl -u bob:*** https://api.example.com/"),
    ("curl -ubob:hunter2 https://x/", "curl -ubob:*** https://x/"),
    ("curl --user bob:hunter2 https://x/", "curl --user bob:*** https://x/"),
    ("curl --user=bob:hunter2 https://x/", "curl --user=bob:*** https://x/"),
    ("curl -H 'Authorization: Bearer hunter2' https://x/", "curl -H 'Authorization: ***' https://x/"),
    ("curl '--header=Authorization: Bearer hunter2' https://x/",
     "curl '--header=Authorization: ***' https://x/"),
    ("curl -H 'PRIVATE-TOKEN: hunter2' https://gitlab/api", "curl -H 'PRIVATE-TOKEN: ***' https://gitlab/api"),
    ("curl -H X-Api-Key:hunter2 https://x/", "curl -H 'X-Api-Key: ***' https://x/"),
    ("curl '-HAuthorization: Bearer hunter2' https://x/", "curl '-HAuthorization: ***' https://x/"),
    ("curl -b session=hunter2 --cookie=sid=hunter2 https://x/",
     "curl -b *** --cookie=*** https://x/"),
    ("curl -b cookies.txt -c jar.txt https://x/", "curl -b cookies.txt -c jar.txt https://x/"),
    ("http -a bob:hunter2 GET https://x/", "http -a bob:*** GET https://x/"),
    ("git -c 'http.extraHeader=Authorization: Basic hunter2' fetch",
     "git -c 'http.extraHeader=Authorization: ***' fetch"),
    # URLs: a password with / and @, a token as the user, tokens in the query
    ("git clone https://bob:hunter2@github.com/o/r.git", "git clone https://bob:***@github.com/o/r.git"),
    ("git clone https://bob:hun/ter2@host/r.git", "git clone https://bob:***@host/r.git"),
    ("git clone https://bob:hu@nter2@host/r.git", "git clone https://bob:***@host/r.git"),
    ("git clone https://ghp_hunter2abcdefghijklmnop@github.com/o/r",
     "git clone https://***@github.com/o/r"),
    ("git clone https://x1y2z3hunter2token99@host/r", "git clone https://***@host/r"),
    ("curl https://api.example.com/v1?access_token=hunter2&page=2",
     "curl 'https://api.example.com/v1?access_token=***&page=2'"),
    ("curl 'https://maps.example.com/api?key=hunter2'", "curl 'https://maps.example.com/api?key=***'"),
    ("wget 'https://acct.blob.core.windows.net/c/f?sv=2022&sig=hunter2%3D'",
     "wget 'https://acct.blob.core.windows.net/c/f?sv=2022&sig=***'"),
    ("curl 'https://h/x?a=1&client_secret=hunter2#frag'", "curl 'https://h/x?a=1&client_secret=***#frag'"),
    # other tools with their own flags
    ("sshpass -p hunter2 ssh -p 22 deploy@host", "sshpass -p *** ssh -p 22 deploy@host"),
    ("sshpass -phunter2 scp f host:", "sshpass -p*** scp f host:"),
    ("openssl rsa -in k.pem -passin pass:hunter2 -out o.pem",
     "openssl rsa -in k.pem -passin pass:*** -out o.pem"),
    ("openssl pkcs12 -export -passout pass:hunter2 -passin env:PW",
     "openssl pkcs12 -export -passout pass:*** -passin env:PW"),
    ("openssl enc -aes-256-cbc -k hunter2 -in f", "openssl enc -aes-256-cbc -k *** -in f"),
    ("docker login -u bob -p hunter2 registry.example.com",
     "docker login -u bob -p *** registry.example.com"),
    ("podman login --username bob --password hunter2 quay.io",
     "podman login --username bob --password *** quay.io"),
    ("helm registry login reg -u bob -p hunter2", "helm registry login reg -u bob -p ***"),
    ("7z x -phunter2 a.7z", "7z x -p*** a.7z"),
    ("zip -P hunter2 out.zip f", "zip -P *** out.zip f"),
    ("keytool -importcert -storepass hunter2 -keystore ks.jks",
     "keytool -importcert -storepass *** -keystore ks.jks"),
    # names: variables, camelCase, Java properties, --key
    ("env SECRET_KEY_BASE=hunter2 rails s", "env SECRET_KEY_BASE=*** rails s"),
    ("env RAILS_MASTER_KEY=hunter2 GITHUB_TOKEN=hunter2 make",
     "env RAILS_MASTER_KEY=*** GITHUB_TOKEN=*** make"),
    ("java -Djavax.net.ssl.trustStorePassword=hunter2 -jar app.jar",
     "java -Djavax.net.ssl.trustStorePassword=*** -jar app.jar"),
    ("node app.js --dbPassword=hunter2 --port 80", "node app.js --dbPassword=*** --port 80"),
    ("app --dbPassword hunter2", "app --dbPassword ***"),
    ("app --key=hunter2", "app --key=***"),
    ("app --key hunter2", "app --key ***"),
    ("app --api-key hunter2 --client-secret hunter2", "app --api-key *** --client-secret ***"),
    ("aws configure set aws_secret_access_key hunter2/abc",
     "aws configure set aws_secret_access_key ***"),
    ("git config --global user.password hunter2", "git config --global user.password ***"),
    ("npm config set _authToken hunter2", "npm config set _authToken ***"),
    ("app --aws-secret-access-key=/hunter2/abc", "app --aws-secret-access-key=***"),
    ("kubectl create secret generic s --from-literal=password=hunter2",
     "kubectl create secret generic s --from-literal=password=***"),
    ("helm install r c --set a=1,auth.rootPassword=hunter2",
     "helm install r c --set a=1,auth.rootPassword=***"),
    ("docker run -e MYSQL_ROOT_PASSWORD=hunter2 -p 3306:3306 mysql:8",
     "docker run -e MYSQL_ROOT_PASSWORD=*** -p 3306:3306 mysql:8"),
    ("app --auth=bob:hunter2", "app --auth=***"),
    ("curl --cookie 'sid=hunter2' https://x/", "curl --cookie *** https://x/"),
    ("env SESSION_COOKIE=hunter2 app", "env SESSION_COOKIE=*** app"),
    ("app --env '{\"API_TOKEN\": \"hunter2\", \"HOME\": \"/root\"}'",
     "app --env '{\"API_TOKEN\": \"***\", \"HOME\": \"/root\"}'"),
    # shell scripts: the value goes, the rest of the script stays
    ("sh -c 'cd /x && API_TOKEN=hunter2 ./deploy --prod'",
     "sh -c 'cd /x && API_TOKEN=*** ./deploy --prod'"),
    ("sh -c 'TOKEN=hunter2 cmd'", "sh -c 'TOKEN=*** cmd'"),
    ("bash -ec 'export DB_PASSWORD=hunter2; ./migrate'",
     "bash -ec 'export DB_PASSWORD=***; ./migrate'"),
    ("bash -c 'curl -H \"Authorization: Bearer hunter2\" https://x/ | jq .'",
     "bash -c 'curl -H \"Authorization: ***\" https://x/ | jq .'"),
    ("bash -c 'mysql -phunter2 shop < dump.sql && ls -p /tmp'",
     "bash -c 'mysql -p*** shop < dump.sql && ls -p /tmp'"),
    ("docker exec db sh -c 'mysqldump -uroot -phunter2 shop > /b.sql'",
     "docker exec db sh -c 'mysqldump -uroot -p*** shop > /b.sql'"),
    ("su - app -c 'PASSWORD=hunter2 ./run'", "su - app -c 'PASSWORD=*** ./run'"),
    ("bash -c \"sh -c 'TOKEN=hunter2 ./x'\"", "bash -c \"sh -c 'TOKEN=*** ./x'\""),
    ("ssh host 'cd /srv && API_KEY=hunter2 ./deploy'",
     "ssh host 'cd /srv && API_KEY=*** ./deploy'"),
]

# Command lines that must come out exactly as they went in.
KEPT = [
    "docker run -p 8080:80 -v /data:/data nginx:1.25",
    "ssh -p 2222 deploy@host uptime",
    "redis-cli -p 6379 ping",
    "mysql -P 3306 -h db -u app shop",
    "python3 -m http.server -p 8080",
    "nc -l -p 9000",
    "rsync -avz -p src/ host:dst/",
    "ls -p /tmp",
    "git clone git@github.com:org/repo.git",
    "git clone https://github.com/org/repo.git",
    "git clone ssh://git@github.com/org/repo.git",
    "npm install http://localhost:4873/@scope/pkg/-/pkg-1.0.0.tgz",
    "curl https://registry.npmjs.org/@babel/core",
    "curl -u bob https://x/",
    "curl --key /etc/ssl/private/client.key --cert client.crt https://x/",
    "ssh -i ~/.ssh/id_ed25519 host",
    "app --private-key-file /etc/app/key.pem",
    "app --private-key /etc/app/key.pem",
    "app --ssh-key=./deploy_key",
    "app --password-file=/run/secrets/db",
    "app --password-file /run/secrets/db",
    "app --token-file /var/run/token",
    "docker login --password-stdin -u bob registry.example.com",
    "openssl rsa -in k.pem -passin file:/run/pw -passout env:OUT",
    "sort --key=2,2n -t, data.csv",
    "sort -k 2 --key 3 f",
    "app --no-password --pass-through --tokenizer=bpe --max-tokens=512",
    "mongod --auth --port 27017 --bind_ip_all",
    "mongod --auth /data/db",
    "ansible-playbook --ask-vault-pass --ask-pass site.yml",
    "git credential fill",
    "curl --cookie cookies.txt https://x/",
    "app --basic-auth --realm r",
    "app --secret-name=db-creds --token-ttl=3600",
    "java -Djavax.net.ssl.trustStore=/etc/ssl/cacerts -Xmx2g -jar app.jar",
    "kubectl get secret db -o yaml",
    "sh -c 'cd /srv && exec ./server --port 8080'",
    "bash -lc 'make -j8 && make test'",
    "python3 -c 'print(1)'",
    "postgres: checkpointer",
    "nginx: worker process",
    "app a=b --pass= https://host/x",
    "curl -H 'Accept: application/json' -H 'Content-Type: text/plain' https://x/",
    "app --label key:value --keyring /etc/k",
    "git config --global credential.helper store",
    "git config user.name bob",
    "aws configure set region eu-west-1",
    "env HOME=/root PATH=/usr/bin LANG=C.UTF-8 make",
]


@pytest.mark.parametrize("line, expect", REDACTED, ids=[r[0][:60] for r in REDACTED])
def test_secrets_are_redacted(line, expect):
    got = S.redact(shlex.split(line))
    assert got == shlex.split(expect)


@pytest.mark.parametrize("line", KEPT)
def test_ordinary_command_lines_survive(line):
    argv = shlex.split(line)
    assert S.redact(argv) == argv


def test_the_table_hides_every_secret():
    for line, _expect in REDACTED:
        got = S.redact(shlex.split(line))
        assert not any(SECRET in arg for arg in got), (line, got)


def test_a_secret_cut_by_the_length_limit_is_redacted_first():
    """The sampler keeps CMDLINE_MAX bytes; it must cut after redacting, or a cut URL
    (`https://u:hunter2...` without its `@`) or a cut JSON value would no longer match a rule."""
    for tail in ("https://bob:hunter2hunter2hunter2@host/r.git",
                 '{"token": "hunter2hunter2hunter2hunter2"}'):
        filler = "x" * (S.CMDLINE_MAX - 5 - 1 - 20)  # the secret straddles the limit
        argv = ["prog", filler, tail]
        cut_first = S.redact(S.fit_cmdline(argv)[0])
        assert any("hunter2" in a for a in cut_first)  # the old order leaked
        args, _truncated = S.fit_cmdline(S.redact(argv))
        assert sum(len(a.encode()) + 1 for a in args) <= S.CMDLINE_MAX + 1
        assert not any("hunter2" in a for a in args)
    long = ["prog", "x" * S.CMDLINE_MAX, "--password", "hunter2"]
    args, truncated = S.fit_cmdline(S.redact(long))
    assert truncated and len(args[1]) == S.CMDLINE_MAX - 5 and "hunter2" not in args


def test_read_cmdline_reads_past_the_limit_then_cut(tmp_path):
    """Read whole (within a bound), redact, then cut: through a fixture cmdline file."""
    base = tmp_path / "p"
    base.mkdir()
    argv = ["prog", "y" * (S.CMDLINE_MAX - 30), "https://bob:hunter2hunter2hunter2@host/x"]
    (base / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    args, truncated = S.split_cmdline(S.read_cmdline_bytes(str(base) + "/"))
    assert args == argv and not truncated  # read whole; the cut comes after redaction
    cut, truncated = S.fit_cmdline(S.redact(args))
    assert not any("hunter2" in a for a in cut)
    huge = ["prog", "z" * S.CMDLINE_READ, "hunter2"]  # past the read bound: last arg dropped
    (base / "cmdline").write_bytes(b"\0".join(a.encode() for a in huge))
    args, truncated = S.split_cmdline(S.read_cmdline_bytes(str(base) + "/"))
    assert truncated and args == ["prog"]
    assert S.read_cmdline_bytes(str(tmp_path / "gone") + "/") is None


# Secrets of any shape put where the rules look: never in the output, never a crash.
secrets = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Z")), min_size=6,
                  max_size=24).filter(lambda s: not s.startswith("-") and "'" not in s
                                      and '"' not in s and "\\" not in s and "*" not in s)
TEMPLATES = [
    ["mysql", "-p{s}"], ["mysql", "-p", "{s}"], ["app", "--password={s}"],
    ["app", "--token", "{s}"], ["git", "config", "user.password", "{s}"],
    ["env", "PGPASSWORD={s}", "psql"], ["curl", "-u", "bob:{s}", "https://x/"],
    ["redis-cli", "-a", "{s}"], ["sshpass", "-p", "{s}", "ssh", "h"],
    ["openssl", "x", "-passin", "pass:{s}"], ["docker", "login", "-p", "{s}", "r"],
    ["app", "--dbPassword={s}"], ["sh", "-c", "cd /x && API_TOKEN='{s}' ./deploy"],
    ["curl", "-H", "Authorization: Bearer {s}"], ["app", "--header=X-Api-Key: {s}"],
]


@given(st.sampled_from(TEMPLATES), secrets)
@settings(max_examples=500, deadline=None)
def test_any_secret_in_a_known_place_is_hidden(template, secret):
    assume(not any(secret in part for part in template))  # "config" in `git config`: not a leak
    argv = [part.replace("{s}", secret) for part in template]
    got = S.redact(argv)
    assert len(got) == len(argv)
    assert not any(secret in arg for arg in got), (argv, got)


@given(st.lists(st.text(max_size=40) | st.sampled_from(
    ["-p", "sh", "-c", "mysql", "curl", "-u", "--password", "login", "docker", "https://",
     "a=b c", "'", '"', "\\", "://u:p@h", "?token=x&", "Authorization:", "\udce9", "\n"]),
    max_size=8))
@settings(max_examples=1500, deadline=None)
def test_redaction_never_fails_and_keeps_the_shape(argv):
    got = S.redact(argv)
    assert len(got) == len(argv) and all(isinstance(a, str) for a in got)
    assert S.redact(got) == S.redact(S.redact(got))  # settles: nothing left to find


HOSTILE = [  # real processes: argv[0] is what `ps` shows, the interpreter just sleeps
    ["mysql", "-u", "root", "-phunter2", "shop"],
    ["sh", "-c", "cd /x && API_TOKEN=hunter2 ./deploy"],
    ["curl", "-u", "bob:hunter2", "--header=Authorization: Bearer hunter2", "https://x/"],
    ["java", "-Djavax.net.ssl.trustStorePassword=hunter2", "--dbPassword=hunter2"],
    ["git", "clone", "https://bob:hun/ter@2hunter2@example.com/r.git"],
    ["prog", "y" * (S.CMDLINE_MAX - 30), "https://bob:hunter2hunter2hunter2@host/x"],
]


@pytest.mark.live
def test_real_processes_with_secrets_are_recorded_redacted(tmp_path):
    import subprocess
    import sys

    from conftest import SAMPLER, log_text, records

    procs = [subprocess.Popen([argv[0], "-c", "import time; time.sleep(60)", *argv[1:]],
                              executable=sys.executable) for argv in HOSTILE]
    try:
        run = subprocess.run([sys.executable, "-I", "-S", str(SAMPLER), "--dir",
                              str(tmp_path / "log"), "--duration", "0.5", "--quiet",
                              "--no-kmsg"], capture_output=True, text=True, timeout=60)
    finally:
        for p in procs:
            p.kill()
            p.wait()
    assert run.returncode == 0, run.stderr
    text = log_text(tmp_path / "log")
    assert "hunter2" not in text
    cmds = {r.obj["cmd"][0]: r.obj for r in records(tmp_path / "log")
            if r.type == "P" and r.obj.get("cmd") and int(r.fields[0]) in
            {p.pid for p in procs}}
    assert cmds["mysql"]["cmd"][-2:] == ["-p***", "shop"]
    assert cmds["sh"]["cmd"][-1] == "cd /x && API_TOKEN=*** ./deploy"
    assert cmds["prog"]["cmd_truncated"] is True  # cut, after the URL was redacted whole
