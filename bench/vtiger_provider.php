<?php
/**
 * How long the UVox Vtiger provider adds to a record save: the time of send() as a
 * workflow calls it, for one number and for a 200-number send, against a running UVox.
 *
 *   UVOX_URL=http://127.0.0.1:8000 UVOX_ACCOUNT=... UVOX_APIKEY=... php bench/vtiger_provider.php [ROUNDS]
 *
 * Prints figures; asserts nothing (every send must be accepted, or it stops).
 */

require dirname(__DIR__) . '/tests/vtiger/vtiger_standins.php';
VtigerStandIn::install(dirname(__DIR__) . '/integrations/vtiger/UVox.php');

$rounds = isset($argv[1]) ? max(1, (int) $argv[1]) : 50;
$provider = VtigerStandIn::activeProvider('UVox', array(
    'accountnumber' => getenv('UVOX_ACCOUNT'),
    'apikey' => getenv('UVOX_APIKEY'),
    'from' => 'UVox',
    'url' => getenv('UVOX_URL'),
), 'bench@example.com', '');

function measure($provider, $rounds, array $numbers)
{
    $times = array();
    for ($i = 0; $i < $rounds; $i++) {
        $t = hrtime(true);
        $rows = $provider->send('Bench ' . $i, $numbers);
        $times[] = (hrtime(true) - $t) / 1e6;
        foreach ($rows as $row) {
            if ($row['error']) {
                fwrite(STDERR, "refused: {$row['to']} {$row['statusmessage']}\n");
                exit(1);
            }
        }
    }
    sort($times);
    $pick = function ($q) use ($times) {
        return $times[min(count($times) - 1, (int) floor($q * count($times)))];
    };
    return sprintf('median %.1f ms, p95 %.1f ms, max %.1f ms', $pick(0.5), $pick(0.95), end($times));
}

$many = array();
for ($i = 0; $i < 200; $i++) {
    $many[] = sprintf('+1305555%04d', $i);
}
echo "send() to 1 number, $rounds rounds: " . measure($provider, $rounds, array('+1 (305) 555-0101')) . "\n";
$few = max(1, intdiv($rounds, 5));
echo "send() to 200 numbers, $few rounds: " . measure($provider, $few, $many) . "\n";
