<?php
/**
 * The UVox Vtiger provider, driven the way Vtiger drives it, against a running UVox.
 *
 *   php tests/vtiger/provider_test.php SCENARIO
 *
 * Scenarios needing the platform read UVOX_URL (bare address), UVOX_ACCOUNT, UVOX_APIKEY
 * (an account with balance), UVOX_POOR_ACCOUNT/UVOX_POOR_APIKEY (zero balance, no credit),
 * UVOX_NUMBERS (comma-separated numbers the account's plan prices). Prints one line per
 * check ("ok"/"not ok"), exits 1 if any check failed or PHP raised any warning or notice.
 */

require __DIR__ . '/vtiger_standins.php';

VtigerStandIn::install(dirname(__DIR__, 2) . '/integrations/vtiger/UVox.php');

$failures = 0;

function check($condition, $label, $detail = null)
{
    global $failures;
    echo ($condition ? 'ok' : 'not ok') . " - $label";
    if (!$condition) {
        $failures++;
        if ($detail !== null) {
            echo "\n    " . str_replace("\n", "\n    ", is_string($detail) ? $detail : json_encode($detail, JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES));
        }
    }
    echo "\n";
    return $condition;
}

function env($name, $default = null)
{
    $value = getenv($name);
    if ($value === false || $value === '') {
        if ($default === null) {
            fwrite(STDERR, "missing environment variable $name\n");
            exit(2);
        }
        return $default;
    }
    return $value;
}

/** A provider configured as Vtiger does it from the saved server row. */
function provider(array $overrides = array())
{
    $defaults = array('accountnumber' => 'UVOX_ACCOUNT', 'apikey' => 'UVOX_APIKEY', 'url' => 'UVOX_URL');
    $parameters = array('from' => 'UVox');
    foreach ($defaults as $key => $variable) {
        $parameters[$key] = array_key_exists($key, $overrides) ? $overrides[$key] : env($variable);
    }
    $parameters = array_merge($parameters, $overrides);
    return VtigerStandIn::activeProvider('UVox', $parameters, 'crm@example.com', 'not-sent-anywhere');
}

function numbers()
{
    return explode(',', env('UVOX_NUMBERS'));
}

/** "+13055550101" typed the way CRM users type it: "+1 (305) 555-0101". */
function messy($e164)
{
    $d = ltrim($e164, '+');
    if (strlen($d) < 8) {
        return $e164;
    }
    return '+' . substr($d, 0, strlen($d) - 7) . ' (' . substr($d, -7, 3) . ') ' . substr($d, -4, 2) . '-' . substr($d, -2);
}

/** Asks for statuses the way Vtiger's "Check status" does, until every row is settled or time is up. */
function pollUntil(SMSNotifierStandIn $crm, $provider, array $wanted, $seconds)
{
    $deadline = microtime(true) + $seconds;
    do {
        $rows = $crm->smsquery($provider);
        $settled = true;
        foreach ($rows as $row) {
            if (!in_array($row['status'], $wanted, true)) {
                $settled = false;
            }
        }
        if ($settled) {
            return $rows;
        }
        usleep(300000);
    } while (microtime(true) < $deadline);
    return $rows;
}

function wanted_statuses()
{
    $statuses = array(SMSNotifier_ISMSProvider_Model::MSG_STATUS_DELIVERED);
    if (getenv('UVOX_EXPECT_DELIVERED') !== '1') {
        $statuses[] = SMSNotifier_ISMSProvider_Model::MSG_STATUS_DISPATCHED;
    }
    return $statuses;
}

/** A TCP port on which nothing listens (bound, then closed). */
function deadPort()
{
    $server = stream_socket_server('tcp://127.0.0.1:0', $errno, $errstr);
    $name = stream_socket_get_name($server, false);
    fclose($server);
    return (int) substr(strrchr($name, ':'), 1);
}

$scenarios = array();

/* ---- scenarios without the platform -------------------------------------------------- */

$scenarios['loader'] = function () {
    check(in_array('UVox', VtigerStandIn::providerNames(), true), 'UVox.php is listed among the providers');
    $p = VtigerStandIn::getInstance('UVox');
    check($p instanceof SMSNotifier_ISMSProvider_Model, 'class SMSNotifier_UVox_Provider implements the interface');
    check($p->getName() === 'UVox', 'getName() is UVox, the file name');
    $names = array_map(function ($f) { return $f['name']; }, $p->getRequiredParams());
    check($names === array('accountnumber', 'apikey', 'from', 'url'), 'form fields: accountnumber, apikey, from, url', $names);
    foreach ($p->getRequiredParams() as $field) {
        check(isset($field['label'], $field['type']), "field {$field['name']} has a label and a type");
    }
    check($p->getServiceURL() === 'https://my.unityvox.com/api/get-api/v1/', 'no address given: the public platform', $p->getServiceURL());
    $expect = 'https://my.unityvox.com/api/get-api/v1/sms-api';
    foreach (array('https://my.unityvox.com', 'https://my.unityvox.com/', 'my.unityvox.com',
                   'https://my.unityvox.com/api/get-api/v1/', 'https://my.unityvox.com/api/get-api/v1',
                   ' https://my.unityvox.com/api/get-api/v1/sms-api?x=1 ') as $pasted) {
        $p->setParameter('url', $pasted);
        check($p->getServiceURL('SEND') === $expect, "address pasted as '$pasted' sends to the endpoint", $p->getServiceURL('SEND'));
    }
    $p->setParameter('url', 'http://10.0.0.5:8000/uvox/');
    check($p->getServiceURL('QUERY') === 'http://10.0.0.5:8000/uvox/api/get-api/v1/sms-api/status',
        'a self-hosted platform under a path keeps the path', $p->getServiceURL('QUERY'));
    check($p->getParameter('missing', 'dflt') === 'dflt', 'getParameter() returns the default for unset keys');
};

$scenarios['down'] = function () {
    $p = provider(array('url' => 'http://127.0.0.1:' . deadPort(), 'accountnumber' => 'x', 'apikey' => 'y'));
    $t = microtime(true);
    $rows = $p->send('Hello', array('+1 305 555 0101', '+58 412-555-0101'));
    $elapsed = microtime(true) - $t;
    check(count($rows) === 2, 'server down: one row per number', $rows);
    foreach ($rows as $row) {
        check($row['error'] === true && $row['id'] === '', "server down: {$row['to']} is an error row", $row);
        check(stripos($row['statusmessage'], 'unreachable') !== false, 'server down: the message says the platform is unreachable', $row['statusmessage']);
    }
    check($elapsed < 5, sprintf('server down: answered in %.2f s', $elapsed));
    $q = $p->query('123');
    check($q['error'] === true && $q['needlookup'] === 1, 'server down: query is an error to retry later', $q);
};

$scenarios['hang'] = function () {
    // Accepts connections (the kernel completes the handshake) and never answers.
    $server = stream_socket_server('tcp://127.0.0.1:0', $errno, $errstr);
    $port = (int) substr(strrchr(stream_socket_get_name($server, false), ':'), 1);
    $p = provider(array('url' => "http://127.0.0.1:$port", 'accountnumber' => 'x', 'apikey' => 'y', 'timeout' => 2));
    $t = microtime(true);
    $rows = $p->send('Hello', array('+13055550101'));
    $elapsed = microtime(true) - $t;
    check(count($rows) === 1 && $rows[0]['error'] === true, 'hung server: an error row', $rows);
    check(stripos($rows[0]['statusmessage'], 'did not answer') !== false, 'hung server: the message says it timed out', $rows[0]['statusmessage']);
    check($elapsed < 4, sprintf('hung server: gave up after %.2f s (timeout 2 s)', $elapsed));
    fclose($server);
};

$scenarios['not_uvox'] = function () {
    // A proxy error page where the platform should be: PHP's built-in server plays the proxy.
    $router = tempnam(sys_get_temp_dir(), 'uvox-proxy');
    file_put_contents($router, '<?php http_response_code(502); echo "<html><body>Bad Gateway</body></html>";');
    $port = deadPort();
    $cmd = sprintf('exec %s -S 127.0.0.1:%d %s', escapeshellarg(PHP_BINARY), $port, escapeshellarg($router));
    $proc = proc_open($cmd, array(array('pipe', 'r'), array('file', '/dev/null', 'w'), array('file', '/dev/null', 'w')), $pipes);
    for ($i = 0; $i < 50 && !@fsockopen('127.0.0.1', $port); $i++) {
        usleep(100000);
    }
    $p = provider(array('url' => "http://127.0.0.1:$port", 'accountnumber' => 'x', 'apikey' => 'y'));
    $rows = $p->send('Hello', array('+13055550101', '+13055550102'));
    check(count($rows) === 2 && $rows[0]['error'] === true && $rows[1]['error'] === true, 'HTML error page: error rows', $rows);
    check(strpos($rows[0]['statusmessage'], 'HTTP 502') !== false, 'HTML error page: the message gives the HTTP status', $rows[0]['statusmessage']);
    $q = $p->query('1');
    check($q['error'] === true && $q['needlookup'] === 1, 'HTML error page: query error, retried later', $q);
    proc_terminate($proc);
    proc_close($proc);
    unlink($router);
};

/* ---- scenarios against the running platform ----------------------------------------- */

$scenarios['send_query'] = function () {
    $number = numbers()[0];
    // The address as most users paste it: the bare site.
    $p = provider(array('url' => rtrim(env('UVOX_URL'), '/')));
    $crm = new SMSNotifierStandIn();
    $rows = $crm->sendsms($p, 'Your order &amp; invoice are ready', array(messy($number)));
    check(count($rows) === 1, 'one number: one row', $rows);
    $row = $rows[0];
    check($row['error'] === false, 'accepted', $row);
    check($row['to'] === $number, "the row carries the number in E.164 ($number)", $row['to']);
    check(is_string($row['id']) && $row['id'] !== '', 'the row carries the message id', $row);
    check($row['status'] === SMSNotifier_ISMSProvider_Model::MSG_STATUS_PROCESSING, 'status Processing while queued', $row);
    check(strpos($row['statusmessage'], '005') !== false, 'statusmessage gives code 005', $row['statusmessage']);
    $q = $p->query($row['id']);
    check($q['error'] === false, 'query by the id: not an error', $q);
    check(in_array($q['status'], array('Processing', 'Dispatched', 'Delivered'), true)
        && preg_match('/\b01[13]\b/', $q['statusmessage']), 'query: To send (011) or SMS Sent (013)', $q);
};

$scenarios['delivery'] = function () {
    // What a Vtiger user sees with "Check status" while the platform delivers through its SMSC.
    $numbers = array_slice(numbers(), 0, 2);
    $p = provider();
    $crm = new SMSNotifierStandIn();
    $t = microtime(true);
    $rows = $crm->sendsms($p, 'Delivery check: order &amp; invoice', $numbers);
    check(count($rows) === 2 && !$rows[0]['error'] && !$rows[1]['error'], 'two numbers accepted', $rows);
    $rows = pollUntil($crm, $p, wanted_statuses(), (float) env('UVOX_WAIT', '20'));
    foreach ($rows as $row) {
        check(in_array($row['status'], wanted_statuses(), true),
            "{$row['to']} reaches " . implode(' or ', wanted_statuses()) . " (got {$row['status']}: {$row['statusmessage']})", $rows);
        if ($row['status'] === SMSNotifier_ISMSProvider_Model::MSG_STATUS_DELIVERED) {
            check($row['needlookup'] === 0, 'delivered: Vtiger stops asking');
        }
    }
    echo sprintf("# final: %s / %s after %.1f s\n", $rows[0]['status'], $rows[0]['statusmessage'], microtime(true) - $t);
};

$scenarios['several'] = function () {
    $numbers = array_slice(numbers(), 0, 3);
    // The address as the manual prints it: the full endpoint.
    $p = provider(array('url' => rtrim(env('UVOX_URL'), '/') . '/api/get-api/v1/'));
    $crm = new SMSNotifierStandIn();
    $input = array_map('messy', $numbers);
    $input[] = '12ab34';          // malformed: 002
    $input[] = '+999 1234 5678';  // well-formed, no such destination: 014
    $input[] = $input[0];         // the same contact number twice
    $input[] = '00' . ltrim($numbers[1], '+');   // and again, written with the 00 prefix
    $rows = $crm->sendsms($p, 'Reunion manana a las 10', $input);
    check(count($rows) === count($numbers) + 2, 'one row per distinct number', $rows);
    $ids = array();
    foreach ($rows as $i => $row) {
        if ($i < count($numbers)) {
            check($row['error'] === false && $row['to'] === $numbers[$i], "{$numbers[$i]} accepted", $row);
            $ids[] = $row['id'];
        }
    }
    check(count(array_unique($ids)) === count($numbers) && !in_array('', $ids, true), 'distinct message ids', $ids);
    $bad = $rows[count($numbers)];
    check($bad['error'] === true && strpos($bad['statusmessage'], '002') !== false, 'malformed number: error row with code 002', $bad);
    check($bad['to'] === '12ab34', 'malformed number: the row names the number as typed', $bad);
    $unknown = $rows[count($numbers) + 1];
    check($unknown['error'] === true && preg_match('/\b(014|002)\b/', $unknown['statusmessage']), 'unknown destination: error row (014)', $unknown);
    $rows = $crm->smsquery($p);
    foreach (array_slice($rows, 0, count($numbers)) as $row) {
        check(in_array($row['status'], array('Processing', 'Dispatched', 'Delivered'), true), "{$row['to']} looked up: {$row['status']}", $row);
    }
    foreach (array_slice($rows, count($numbers)) as $row) {
        check($row['status'] === 'Failed' && $row['needlookup'] === 0, "{$row['to']} stays Failed, not looked up", $row);
    }
};

$scenarios['many'] = function () {
    // 205 numbers: more than the API takes in one request, so the provider splits them.
    $base = ltrim(numbers()[0], '+');
    $stem = substr($base, 0, -3);
    $input = array();
    for ($i = 0; $i < 205; $i++) {
        $input[] = '+' . $stem . sprintf('%03d', $i);
    }
    $p = provider();
    $t = microtime(true);
    $rows = $p->send('Promo', $input);
    $elapsed = microtime(true) - $t;
    check(count($rows) === 205, '205 numbers: 205 rows', count($rows));
    $accepted = array_filter($rows, function ($r) { return $r['error'] === false; });
    check(count($accepted) === 205, '205 numbers: all accepted', array_values(array_filter($rows, function ($r) { return $r['error']; })));
    check(array_column($rows, 'to') === $input, 'rows in the order of the numbers');
    echo sprintf("# 205 recipients sent in %.2f s\n", $elapsed);
};

$scenarios['delivery_failed'] = function () {
    // The SMSC refuses one number at submit and reports the other undelivered.
    $rejected = env('UVOX_REJECTED');
    $undelivered = env('UVOX_UNDELIVERED');
    $p = provider();
    $crm = new SMSNotifierStandIn();
    $rows = $crm->sendsms($p, 'Will not arrive', array($rejected, $undelivered));
    check(count($rows) === 2 && !$rows[0]['error'] && !$rows[1]['error'], 'both accepted by UVox at first', $rows);
    $rows = pollUntil($crm, $p, array('Failed'), (float) env('UVOX_WAIT', '20'));
    foreach ($rows as $row) {
        echo "# {$row['to']}: {$row['status']} / {$row['statusmessage']}\n";
        check($row['status'] === 'Failed' && $row['needlookup'] === 0, "{$row['to']} ends Failed and is not asked again", $row);
    }
    check(stripos($rows[0]['statusmessage'], 'fail') !== false, 'rejected at submit: the message says Failed', $rows[0]);
    check(stripos($rows[1]['statusmessage'], 'undeliver') !== false, 'undelivered: the message says Undelivered', $rows[1]);
};

$scenarios['wrong_key'] = function () {
    $p = provider(array('apikey' => 'WRONG' . env('UVOX_APIKEY')));
    $rows = $p->send('Hello', array_slice(numbers(), 0, 2));
    check(count($rows) === 2, 'wrong key: one row per number', $rows);
    foreach ($rows as $row) {
        check($row['error'] === true, "wrong key: {$row['to']} is an error row", $row);
        check(strpos($row['statusmessage'], '001') !== false && stripos($row['statusmessage'], 'API Key') !== false,
            'wrong key: the message names code 001 and the API key', $row['statusmessage']);
    }
    $q = $p->query('1');
    check($q['error'] === true && strpos($q['statusmessage'], '001') !== false, 'wrong key: query says 001', $q);
    $p = provider(array('accountnumber' => '', 'apikey' => ''));
    $rows = $p->send('Hello', array(numbers()[0]));
    check($rows[0]['error'] === true && preg_match('/\b(016|001)\b/', $rows[0]['statusmessage']), 'empty credentials: error row (016)', $rows);
};

$scenarios['no_balance'] = function () {
    $p = provider(array('accountnumber' => env('UVOX_POOR_ACCOUNT'), 'apikey' => env('UVOX_POOR_APIKEY')));
    $crm = new SMSNotifierStandIn();
    $rows = $crm->sendsms($p, 'Waiting for a top-up', array_slice(numbers(), 0, 2));
    check(count($rows) === 2, 'no balance: one row per number', $rows);
    foreach ($rows as $row) {
        check($row['error'] === false && $row['id'] !== '', "no balance: {$row['to']} is queued, not an error", $row);
        check($row['status'] === 'Processing' && strpos($row['statusmessage'], '009') !== false,
            'no balance: Processing, message gives code 009', $row);
    }
    $rows = $crm->smsquery($p);
    foreach ($rows as $row) {
        check($row['status'] === 'Processing' && $row['needlookup'] === 1 && strpos($row['statusmessage'], '012') !== false,
            'no balance: status 012, still looked up', $row);
    }
};

$scenarios['bad_input'] = function () {
    $p = provider();
    $rows = $p->send('   ', array(numbers()[0]));
    check(count($rows) === 1 && $rows[0]['error'] === true && strpos($rows[0]['statusmessage'], '003') !== false,
        'empty text: error row with code 003', $rows);
    check($p->send('Hello', array()) === array(), 'no numbers: no rows, no request');
    check($p->send('Hello', array('', '  ')) === array(), 'blank numbers: no rows');
    $q = $p->query('999999999');
    check($q['error'] === true && $q['needlookup'] === 0 && strpos($q['statusmessage'], '010') !== false,
        'unknown message id: 010, not looked up again', $q);
    $rows = provider(array('from' => 'MyCompanyNameTooLong'))->send('Hello', array(numbers()[0]));
    check($rows[0]['error'] === true && strpos($rows[0]['statusmessage'], '104') !== false
        && strpos($rows[0]['statusmessage'], '11') !== false, 'From too long: error row saying what the rule is (104)', $rows);
    $long = str_repeat('x', 400);
    $rows = $p->send('Hello', array('+' . $long));
    check(count($rows) === 1 && $rows[0]['error'] === true && strlen($rows[0]['to']) <= 20,
        'absurd number: error row that fits Vtiger\'s columns', $rows);
};

$scenarios['no_curl'] = function () {
    // Run as: php -d disable_functions=curl_init ... no_curl
    check(!function_exists('curl_init'), 'curl is disabled in this run');
    $before = Vtiger_Net_Client::$calls;
    $crm = new SMSNotifierStandIn();
    $rows = $crm->sendsms(provider(), 'Sent through Vtiger_Net_Client', array(messy(numbers()[0])));
    check(Vtiger_Net_Client::$calls > $before, 'the provider used Vtiger_Net_Client');
    check(count($rows) === 1 && $rows[0]['error'] === false && $rows[0]['id'] !== '', 'accepted through Vtiger_Net_Client', $rows);
    $rows = $crm->smsquery(provider());
    check($rows[0]['status'] !== 'Failed', 'status through Vtiger_Net_Client', $rows);
    $p = provider(array('url' => 'http://127.0.0.1:' . deadPort()));
    $rows = $p->send('Hello', array('+13055550101'));
    check($rows[0]['error'] === true, 'server down through Vtiger_Net_Client: error row', $rows);
};

/* ------------------------------------------------------------------------------------- */

$name = isset($argv[1]) ? $argv[1] : '';
if (!isset($scenarios[$name])) {
    fwrite(STDERR, "usage: php provider_test.php " . implode('|', array_keys($scenarios)) . "\n");
    exit(2);
}
try {
    $scenarios[$name]();
} catch (Throwable $e) {
    check(false, 'no exception', get_class($e) . ': ' . $e->getMessage() . "\n" . $e->getTraceAsString());
}
check(!$GLOBALS['UVOX_PHP_PROBLEMS'], 'no PHP warning, notice or deprecation', $GLOBALS['UVOX_PHP_PROBLEMS']);
exit($failures ? 1 : 0);
