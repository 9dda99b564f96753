<?php
/**
 * Minimal stand-ins for the Vtiger CRM parts the UVox provider touches, written from the
 * public signatures of Vtiger 7/8 (modules/SMSNotifier/models/ISMSProvider.php,
 * vtlib/Vtiger/Net/Client.php, SMSNotifier::sendsms/smsquery, the provider loader).
 * Only Vtiger is stood in for: the provider talks to a real, running UVox platform.
 */

error_reporting(E_ALL);
ini_set('display_errors', 'stderr');

/** Every warning, notice or deprecation raised while the provider runs; a test fails on any. */
$GLOBALS['UVOX_PHP_PROBLEMS'] = array();
set_error_handler(function ($severity, $message, $file, $line) {
    if (!(error_reporting() & $severity)) {
        return true;   // silenced with @ by the stand-ins themselves
    }
    $GLOBALS['UVOX_PHP_PROBLEMS'][] = "$message at $file:$line";
    return true;
});

/** Same constants and method signatures as Vtiger's interface (untyped, as in Vtiger). */
interface SMSNotifier_ISMSProvider_Model
{
    const MSG_STATUS_DISPATCHED = 'Dispatched';
    const MSG_STATUS_PROCESSING = 'Processing';
    const MSG_STATUS_DELIVERED = 'Delivered';
    const MSG_STATUS_FAILED = 'Failed';
    const MSG_STATUS_ERROR = 'ERR: ';

    const SERVICE_SEND = 'SEND';
    const SERVICE_QUERY = 'QUERY';
    const SERVICE_PING = 'PING';
    const SERVICE_AUTH = 'AUTH';

    public function getRequiredParams();
    public function getServiceURL($type = false);
    public function setAuthParameters($userName, $password);
    public function setParameter($key, $value);
    public function send($message, $toNumbers);
    public function query($messageId);
}

/**
 * Vtiger's HTTP helper: the same public methods, built here on PHP streams. Like the real
 * one (PEAR HTTP_Request) it returns the body of any HTTP answer, whatever its status, and
 * false when no answer came.
 */
class Vtiger_Net_Client
{
    public $url;
    public $response;
    public $headers = array();
    public static $calls = 0;

    public function __construct($url)
    {
        $this->setURL($url);
    }

    public function setURL($url)
    {
        $this->url = $url;
        $this->response = false;
        $this->headers = array('referer' => '?noreferer');
    }

    public function setHeaders($values)
    {
        foreach ($values as $key => $value) {
            $this->headers[strtolower($key)] = $value;
        }
    }

    public function doGet($params = false, $timeout = null)
    {
        $url = $this->url;
        if ($params) {
            $url .= (strpos($url, '?') === false ? '?' : '&') . http_build_query($params);
        }
        return $this->request('GET', $url, null, $timeout);
    }

    public function doPost($params = false, $timeout = null)
    {
        $body = is_string($params) ? $params : http_build_query($params ?: array());
        return $this->request('POST', $this->url, $body, $timeout);
    }

    public function wasError()
    {
        return $this->response === false;
    }

    public function disconnect()
    {
    }

    private function request($method, $url, $body, $timeout)
    {
        self::$calls++;
        $headers = array();
        foreach ($this->headers as $key => $value) {
            $headers[] = "$key: $value";
        }
        if ($body !== null) {
            $headers[] = 'content-type: application/x-www-form-urlencoded';
        }
        $context = stream_context_create(array('http' => array(
            'method' => $method,
            'header' => implode("\r\n", $headers),
            'content' => $body === null ? '' : $body,
            'timeout' => $timeout ?: 30,
            'ignore_errors' => true,
        )));
        // The real client reports a dead host as a PEAR error, not a PHP warning.
        $content = @file_get_contents($url, false, $context);
        $this->response = $content;
        return $content;
    }
}

/**
 * Vtiger's provider loader: SMSNotifier_Provider_Model::getAll() lists
 * modules/SMSNotifier/providers/*.php and Vtiger_Loader turns "UVox" into the class
 * SMSNotifier_UVox_Provider, loading it from modules/SMSNotifier/providers/UVox.php.
 */
class VtigerStandIn
{
    public static $root;

    public static function install($providerFile)
    {
        self::$root = sys_get_temp_dir() . '/uvox-vtiger-' . getmypid();
        $dir = self::$root . '/modules/SMSNotifier/providers';
        if (!is_dir($dir)) {
            mkdir($dir, 0777, true);
        }
        copy($providerFile, $dir . '/' . basename($providerFile));
        spl_autoload_register(function ($class) {
            $parts = explode('_', $class);
            if (count($parts) === 3 && $parts[2] === 'Provider') {
                $file = VtigerStandIn::$root . '/modules/' . $parts[0] . '/providers/' . $parts[1] . '.php';
                if (is_file($file)) {
                    require_once $file;
                }
            }
        });
        register_shutdown_function(function () use ($dir) {
            foreach (glob($dir . '/*') as $file) {
                unlink($file);
            }
            @rmdir($dir);
            @rmdir(dirname($dir));
            @rmdir(dirname(dirname($dir)));
            @rmdir(VtigerStandIn::$root);
        });
    }

    public static function providerNames()
    {
        $names = array();
        foreach (scandir(self::$root . '/modules/SMSNotifier/providers') as $file) {
            if (preg_match('/^(.*)\.php$/', $file, $m) && $m[1] !== 'MyProvider') {
                $names[] = $m[1];
            }
        }
        return $names;
    }

    public static function getInstance($providerName)
    {
        $class = 'SMSNotifier_' . trim($providerName) . '_Provider';
        return new $class();
    }

    /**
     * SMSNotifierManager::getActiveProviderInstance(): the saved server row becomes
     * setParameter() calls for the form fields, then setAuthParameters(user, password).
     */
    public static function activeProvider($providerName, array $parameters, $userName, $password)
    {
        $provider = self::getInstance($providerName);
        foreach ($parameters as $key => $value) {
            $provider->setParameter($key, $value);
        }
        $provider->setAuthParameters($userName, $password);
        return $provider;
    }
}

/**
 * What SMSNotifier does with the provider's answers: vtiger_smsnotifier_status rows
 * (tonumber varchar(20), status varchar(10), statusmessage varchar(100),
 * smsmessageid varchar(50), needlookup int). Widths are checked as strict MySQL would.
 */
class SMSNotifierStandIn
{
    public $rows = array();

    /** SMSNotifier::fireSendSMS + processFireSendSMSResponse. */
    public function sendsms($provider, $message, $toNumbers)
    {
        $responses = $provider->send($message, $toNumbers);
        if (!is_array($responses)) {
            throw new RuntimeException('send() must return an array, got ' . gettype($responses));
        }
        foreach ($responses as $response) {
            foreach (array('error', 'to', 'statusmessage') as $key) {
                if (!array_key_exists($key, $response)) {
                    throw new RuntimeException("send() row without '$key': " . json_encode($response));
                }
            }
            if ($response['error']) {
                $row = array('to' => $response['to'], 'status' => SMSNotifier_ISMSProvider_Model::MSG_STATUS_FAILED,
                    'statusmessage' => $response['statusmessage'], 'id' => '', 'needlookup' => 0);
            } else {
                $row = array('to' => $response['to'], 'status' => $response['status'],
                    'statusmessage' => $response['statusmessage'], 'id' => $response['id'], 'needlookup' => 1);
            }
            $this->checkWidths($row);
            $this->rows[] = $row;
        }
        return $responses;
    }

    /** SMSNotifier::smsquery: every row still marked needlookup is asked again. */
    public function smsquery($provider)
    {
        foreach ($this->rows as $i => $row) {
            if ((int) $row['needlookup'] !== 1) {
                continue;
            }
            $response = $provider->query($row['id']);
            foreach (array('error', 'status', 'needlookup', 'statusmessage') as $key) {
                if (!array_key_exists($key, $response)) {
                    throw new RuntimeException("query() answer without '$key': " . json_encode($response));
                }
            }
            $row['status'] = $response['error'] ? SMSNotifier_ISMSProvider_Model::MSG_STATUS_FAILED : $response['status'];
            $row['needlookup'] = $response['needlookup'];
            $row['statusmessage'] = $response['statusmessage'];
            $this->checkWidths($row);
            $this->rows[$i] = $row;
        }
        return $this->rows;
    }

    private function checkWidths(array $row)
    {
        $widths = array('to' => 20, 'status' => 10, 'statusmessage' => 100, 'id' => 50);
        foreach ($widths as $key => $width) {
            if (strlen((string) $row[$key]) > $width) {
                throw new RuntimeException("$key longer than Vtiger's column ($width): " . $row[$key]);
            }
        }
    }
}
